/** MAC addresses are kept in one canonical text form: lowercase, colon separated. */

const MAC = /^[0-9a-f]{2}([:-]?[0-9a-f]{2}){5}$/i;

export function isMac(text: string): boolean {
  return MAC.test(text);
}

/** Accepts aa:bb:cc:dd:ee:ff, AA-BB-..., or aabbccddeeff; returns aa:bb:cc:dd:ee:ff. */
export function normalizeMac(text: string): string {
  if (!MAC.test(text)) throw new Error(`not a MAC address (like 52:54:00:12:34:56): ${JSON.stringify(text)}`);
  const hex = text.replace(/[:-]/g, '').toLowerCase();
  return hex.match(/../g)!.join(':');
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Canonical text of the first `length` bytes of a hardware address. */
export function macFromBytes(buf: Buffer, offset = 0, length = 6): string {
  let s = HEX[buf[offset]!]!;
  for (let i = 1; i < length; i++) s += ':' + HEX[buf[offset + i]!]!;
  return s;
}

export function macToBytes(mac: string): Buffer {
  return Buffer.from(normalizeMac(mac).replace(/:/g, ''), 'hex');
}
