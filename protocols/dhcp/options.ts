/**
 * DHCPv4 option codes (RFC 2132 and later) and the few value encodings the
 * server needs. Options travel as raw bytes; these helpers turn them into
 * typed values only when a handler asks.
 */

export const Opt = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS_SERVERS: 6,
  HOST_NAME: 12,
  ROOT_PATH: 17,
  DOMAIN_NAME: 15,
  BROADCAST: 28,
  NTP_SERVERS: 42,
  VENDOR_SPECIFIC: 43,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  VENDOR_CLASS: 60,
  CLIENT_ID: 61,
  TFTP_SERVER: 66,
  BOOTFILE: 67,
  USER_CLASS: 77,
  RELAY_AGENT: 82,
  CLIENT_ARCH: 93,
  CLIENT_NDI: 94,
  CLIENT_UUID: 97,
  DOMAIN_SEARCH: 119,
  IPXE: 175,
  END: 255,
} as const;

export const MessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

export type MessageTypeValue = (typeof MessageType)[keyof typeof MessageType];

export const MESSAGE_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'DISCOVER', 2: 'OFFER', 3: 'REQUEST', 4: 'DECLINE', 5: 'ACK', 6: 'NAK', 7: 'RELEASE', 8: 'INFORM',
};

// ---- encoders: value -> option bytes ----

export function u8(v: number): Buffer {
  return Buffer.from([v & 255]);
}

export function u16(v: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(v & 0xffff, 0);
  return b;
}

export function u32(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
}

/** A list of IPv4 addresses given as integers. */
export function ipList(ips: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(ips.length * 4);
  for (let i = 0; i < ips.length; i++) b.writeUInt32BE(ips[i]! >>> 0, i * 4);
  return b;
}

export function text(v: string): Buffer {
  return Buffer.from(v, 'latin1');
}

// ---- decoders: option bytes -> value (undefined when malformed) ----

export function readU8(b: Buffer | undefined): number | undefined {
  return b && b.length >= 1 ? b[0] : undefined;
}

export function readU16(b: Buffer | undefined): number | undefined {
  return b && b.length >= 2 ? b.readUInt16BE(0) : undefined;
}

export function readU32(b: Buffer | undefined): number | undefined {
  return b && b.length >= 4 ? b.readUInt32BE(0) : undefined;
}

export function readIp(b: Buffer | undefined): number | undefined {
  return b && b.length === 4 ? b.readUInt32BE(0) : undefined;
}

/** Client system architectures of option 93: a list of 16-bit types. */
export function readU16List(b: Buffer | undefined): number[] {
  const out: number[] = [];
  if (!b) return out;
  for (let i = 0; i + 1 < b.length; i += 2) out.push(b.readUInt16BE(i));
  return out;
}

export function readText(b: Buffer | undefined): string | undefined {
  if (!b) return undefined;
  // Some clients NUL-terminate strings (RFC 2132 says not to); drop trailing NULs.
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.toString('latin1', 0, end);
}

/**
 * User class (option 77). RFC 3004 frames it as length-prefixed items, but
 * iPXE and many firmwares send one bare string ("iPXE"). Accept both: if the
 * bytes parse exactly as RFC 3004 items, return those, else the whole string.
 */
export function readUserClasses(b: Buffer | undefined): string[] {
  if (!b || b.length === 0) return [];
  const items: string[] = [];
  let i = 0;
  while (i < b.length) {
    const len = b[i]!;
    if (len === 0 || i + 1 + len > b.length) return [readText(b)!];
    items.push(b.toString('latin1', i + 1, i + 1 + len));
    i += 1 + len;
  }
  return items;
}

/** One encapsulated sub-option (of 43, 82, 175) without splitting the rest; undefined if absent or the framing breaks first. */
export function readSubOption(b: Buffer | undefined, code: number): Buffer | undefined {
  if (!b) return undefined;
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c === Opt.PAD) { i++; continue; }
    if (c === Opt.END || i + 1 >= b.length) return undefined;
    const len = b[i + 1]!;
    if (i + 2 + len > b.length) return undefined;
    if (c === code) return b.subarray(i + 2, i + 2 + len);
    i += 2 + len;
  }
  return undefined;
}

/**
 * Splits encapsulated sub-options (option 43, 82, 175: code, length, value).
 * Returns undefined if the framing is broken.
 */
export function readSubOptions(b: Buffer | undefined): Map<number, Buffer> | undefined {
  if (!b) return undefined;
  const out = new Map<number, Buffer>();
  let i = 0;
  while (i < b.length) {
    const code = b[i]!;
    if (code === Opt.PAD) { i++; continue; }
    if (code === Opt.END) break;
    if (i + 1 >= b.length) return undefined;
    const len = b[i + 1]!;
    if (i + 2 + len > b.length) return undefined;
    out.set(code, b.subarray(i + 2, i + 2 + len));
    i += 2 + len;
  }
  return out;
}
