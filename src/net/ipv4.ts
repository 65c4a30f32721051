/**
 * IPv4 addresses as unsigned 32-bit integers. The hot paths compare and index
 * addresses as numbers; strings appear only at the edges (config, API, logs).
 */

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIpv4(text: string): boolean {
  return IPV4.test(text);
}

/** Parses dotted-quad text; throws on anything else. */
export function ipToInt(text: string): number {
  if (!IPV4.test(text)) throw new Error(`not an IPv4 address: ${JSON.stringify(text)}`);
  const p = text.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
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

/** Writes an address into a buffer at offset (big endian). */
export function writeIp(buf: Buffer, ip: number, offset: number): void {
  buf.writeUInt32BE(ip >>> 0, offset);
}

/** The in-addr.arpa name of an address: 1.0.18.198.in-addr.arpa */
export function reverseName(ip: number): string {
  return `${ip & 255}.${(ip >>> 8) & 255}.${(ip >>> 16) & 255}.${ip >>> 24}.in-addr.arpa`;
}
