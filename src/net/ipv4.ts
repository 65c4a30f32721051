/**
 * IPv4 addresses as unsigned 32-bit integers. The hot paths compare and index
 * addresses as numbers; strings appear only at the edges (config, API, logs).
 */

export function isIpv4(text: string): boolean {
  return parseIpv4(text) >= 0;
}

/**
 * Dotted-quad text to an integer, or -1: exactly four decimal parts of 0-255,
 * no leading zeros, nothing else. By hand rather than a regex and split,
 * because the lease table parses a lease's key on every write.
 */
function parseIpv4(text: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) { // '.'
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0; digits = 0; dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1; // a leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

/** Parses dotted-quad text; throws on anything else. */
export function ipToInt(text: string): number {
  const n = parseIpv4(text);
  if (n < 0) throw new Error(`not an IPv4 address: ${JSON.stringify(text)}`);
  return n;
}

export function intToIp(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export interface Cidr {
  /** Network address as an integer. */
  readonly network: number;
  readonly prefix: number;
  /** Netmask as an integer. */
  readonly mask: number;
  readonly text: string;
}

export function parseCidr(text: string): Cidr {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  if (!m || !isIpv4(m[1]!) || Number(m[2]) > 32) throw new Error(`not an IPv4 network in CIDR form (like 198.18.0.0/24): ${JSON.stringify(text)}`);
  const prefix = Number(m[2]);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const addr = ipToInt(m[1]!);
  if ((addr & mask) >>> 0 !== addr) throw new Error(`${text} has host bits set; the network address is ${intToIp((addr & mask) >>> 0)}/${prefix}`);
  return { network: addr, prefix, mask, text };
}

export function cidrContains(cidr: Cidr, ip: number): boolean {
  return ((ip & cidr.mask) >>> 0) === cidr.network;
}

export function broadcastOf(cidr: Cidr): number {
  return (cidr.network | (~cidr.mask >>> 0)) >>> 0;
}

/** The in-addr.arpa name of an address: 1.0.18.198.in-addr.arpa */
export function reverseName(ip: number): string {
  return `${ip & 255}.${(ip >>> 8) & 255}.${(ip >>> 16) & 255}.${ip >>> 24}.in-addr.arpa`;
}
