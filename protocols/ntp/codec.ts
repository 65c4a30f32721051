/**
 * NTP wire codec (RFC 5905 packet header, RFC 7822 extension fields and MAC
 * trailer). Bytes in, typed packet out; no sockets, clocks or config. See
 * README.md for why this is ours and not `ntp-packet-parser`'s.
 *
 * Timestamps stay exact: a 64-bit NTP timestamp is kept as its two unsigned
 * 32-bit halves, so a server echoes a client's transmit timestamp bit for bit
 * (RFC 5905 requires it; the client matches its reply by it).
 */

/** The fixed header; everything after it is extension fields and/or a MAC. */
export const HEADER_LENGTH = 48;

/** Byte offsets of the header fields a server reads or writes in place. */
export const Offset = {
  POLL: 2,
  REFERENCE_TIME: 16,
  ORIGIN_TIME: 24,
  RECEIVE_TIME: 32,
  TRANSMIT_TIME: 40,
} as const;

export const Mode = {
  RESERVED: 0,
  SYMMETRIC_ACTIVE: 1,
  SYMMETRIC_PASSIVE: 2,
  CLIENT: 3,
  SERVER: 4,
  BROADCAST: 5,
  /** ntpq's control messages: never answered (large replies make them an amplifier). */
  CONTROL: 6,
  /** ntpdc's private messages (monlist): never answered, for the same reason. */
  PRIVATE: 7,
} as const;

export const Leap = {
  NONE: 0,
  /** Last minute of the day has 61 seconds. */
  ADD_SECOND: 1,
  /** Last minute of the day has 59 seconds. */
  DELETE_SECOND: 2,
  /** Clock not synchronised ("alarm condition"). */
  UNSYNCHRONISED: 3,
} as const;

/** Stratum 16 means unsynchronised; stratum 0 marks a kiss-o'-death packet. */
export const STRATUM_UNSYNCHRONISED = 16;
export const STRATUM_KISS = 0;

/** A 64-bit NTP timestamp: seconds since 1900 (modulo the era) and a binary fraction, both uint32. */
export interface NtpTimestamp {
  seconds: number;
  fraction: number;
}

export interface ExtensionField {
  /** Field type (RFC 7822 registry). */
  readonly type: number;
  /** The value after the 4-byte type/length header, padding included. */
  readonly value: Buffer;
}

export interface NtpPacket {
  /** Leap indicator, 0-3 (see Leap). */
  leap: number;
  /** Version number, 0-7 (4 is current). */
  version: number;
  /** Association mode, 0-7 (see Mode). */
  mode: number;
  /** 0 kiss-o'-death, 1 primary, 2-15 secondary, 16 unsynchronised. */
  stratum: number;
  /** log2 of the poll interval in seconds (signed). */
  poll: number;
  /** log2 of the clock's precision in seconds (signed, e.g. -24). */
  precision: number;
  /** Round-trip delay to the primary source, NTP short format (16.16 seconds, unsigned) as its raw 32 bits. */
  rootDelay: number;
  /** Dispersion to the primary source, NTP short format, raw 32 bits. */
  rootDispersion: number;
  /** Upstream IPv4 address (stratum ≥ 2), four ASCII characters (stratum 1, kiss codes), raw uint32. */
  referenceId: number;
  referenceTime: NtpTimestamp;
  /** The client's transmit timestamp, echoed by the server. */
  originTime: NtpTimestamp;
  receiveTime: NtpTimestamp;
  transmitTime: NtpTimestamp;
  /** RFC 7822 extension fields (NTPv4), in order. */
  extensions: ExtensionField[];
  /** Key id and digest (4 bytes alone is a crypto-NAK), when present. */
  mac: Buffer | undefined;
}

export type DecodeFailure =
  | 'short'    // fewer than 48 bytes
  | 'trailer'; // bytes after the header are neither well-formed extension fields nor a MAC

export class NtpDecodeError extends Error {
  constructor(readonly reason: DecodeFailure, detail: string) {
    super(detail);
    this.name = 'NtpDecodeError';
  }
}

/** MAC lengths: key id alone (crypto-NAK), key id + MD5 (16), key id + SHA-1 (20). */
const MAC_LENGTHS = new Set([4, 20, 24]);
/** RFC 7822: the remainder is a MAC when at most this long, else an extension field follows. */
const MAX_MAC_LENGTH = 24;
const MIN_EXTENSION_LENGTH = 16;

export function timestamp(seconds = 0, fraction = 0): NtpTimestamp {
  return { seconds, fraction };
}

/** A packet with every field zero, to fill in (or to decode into, reusing its objects). */
export function emptyPacket(): NtpPacket {
  return {
    leap: 0, version: 0, mode: 0, stratum: 0, poll: 0, precision: 0,
    rootDelay: 0, rootDispersion: 0, referenceId: 0,
    referenceTime: timestamp(), originTime: timestamp(), receiveTime: timestamp(), transmitTime: timestamp(),
    extensions: [], mac: undefined,
  };
}

/** Mode of a datagram from its first byte, before deciding whether to decode it at all. */
export function modeOf(firstByte: number): number {
  return firstByte & 7;
}

export function versionOf(firstByte: number): number {
  return (firstByte >> 3) & 7;
}

export function readTimestamp(buf: Buffer, offset: number, into: NtpTimestamp): NtpTimestamp {
  into.seconds = buf.readUInt32BE(offset);
  into.fraction = buf.readUInt32BE(offset + 4);
  return into;
}

export function writeTimestamp(buf: Buffer, offset: number, ts: NtpTimestamp): void {
  buf.writeUInt32BE(ts.seconds >>> 0, offset);
  buf.writeUInt32BE(ts.fraction >>> 0, offset + 4);
}

/**
 * Decodes one datagram. With `into`, fills that packet and its timestamp
 * objects instead of allocating (the server's per-packet path).
 */
export function decode(buf: Buffer, into: NtpPacket = emptyPacket()): NtpPacket {
  if (buf.length < HEADER_LENGTH) throw new NtpDecodeError('short', `${buf.length} bytes; an NTP packet has at least ${HEADER_LENGTH}`);
  const b0 = buf[0]!;
  into.leap = b0 >> 6;
  into.version = (b0 >> 3) & 7;
  into.mode = b0 & 7;
  into.stratum = buf[1]!;
  into.poll = buf.readInt8(2);
  into.precision = buf.readInt8(3);
  into.rootDelay = buf.readUInt32BE(4);
  into.rootDispersion = buf.readUInt32BE(8);
  into.referenceId = buf.readUInt32BE(12);
  readTimestamp(buf, Offset.REFERENCE_TIME, into.referenceTime);
  readTimestamp(buf, Offset.ORIGIN_TIME, into.originTime);
  readTimestamp(buf, Offset.RECEIVE_TIME, into.receiveTime);
  readTimestamp(buf, Offset.TRANSMIT_TIME, into.transmitTime);
  into.mac = undefined;
  if (into.extensions.length) into.extensions = [];
  if (buf.length > HEADER_LENGTH) decodeTrailer(buf, into);
  return into;
}

function decodeTrailer(buf: Buffer, into: NtpPacket): void {
  let i = HEADER_LENGTH;
  while (buf.length - i > MAX_MAC_LENGTH) {
    const type = buf.readUInt16BE(i);
    const length = buf.readUInt16BE(i + 2);
    if (length < MIN_EXTENSION_LENGTH || length % 4 !== 0 || i + length > buf.length) {
      throw new NtpDecodeError('trailer', `extension field at byte ${i} has length ${length}; expected a multiple of 4, at least ${MIN_EXTENSION_LENGTH}, within the ${buf.length - i} bytes left`);
    }
    into.extensions.push({ type, value: buf.subarray(i + 4, i + length) });
    i += length;
  }
  const rest = buf.length - i;
  if (rest === 0) return;
  if (!MAC_LENGTHS.has(rest)) throw new NtpDecodeError('trailer', `${rest} bytes after byte ${i} are neither an extension field nor a MAC (4, 20 or 24 bytes)`);
  into.mac = buf.subarray(i);
}

export function encodingLength(p: NtpPacket): number {
  let n = HEADER_LENGTH;
  for (const e of p.extensions) n += 4 + e.value.length;
  return n + (p.mac?.length ?? 0);
}

/** Writes the packet at buf[offset...]; returns the number of bytes written. */
export function encodeInto(p: NtpPacket, buf: Buffer, offset = 0): number {
  buf[offset] = ((p.leap & 3) << 6) | ((p.version & 7) << 3) | (p.mode & 7);
  buf[offset + 1] = p.stratum & 255;
  buf.writeInt8(p.poll, offset + 2);
  buf.writeInt8(p.precision, offset + 3);
  buf.writeUInt32BE(p.rootDelay >>> 0, offset + 4);
  buf.writeUInt32BE(p.rootDispersion >>> 0, offset + 8);
  buf.writeUInt32BE(p.referenceId >>> 0, offset + 12);
  writeTimestamp(buf, offset + Offset.REFERENCE_TIME, p.referenceTime);
  writeTimestamp(buf, offset + Offset.ORIGIN_TIME, p.originTime);
  writeTimestamp(buf, offset + Offset.RECEIVE_TIME, p.receiveTime);
  writeTimestamp(buf, offset + Offset.TRANSMIT_TIME, p.transmitTime);
  let i = offset + HEADER_LENGTH;
  for (const e of p.extensions) {
    buf.writeUInt16BE(e.type, i);
    buf.writeUInt16BE(4 + e.value.length, i + 2);
    e.value.copy(buf, i + 4);
    i += 4 + e.value.length;
  }
  if (p.mac) i += p.mac.copy(buf, i);
  return i - offset;
}

export function encode(p: NtpPacket): Buffer {
  const buf = Buffer.alloc(encodingLength(p));
  encodeInto(p, buf, 0);
  return buf;
}

// ---- values ----

const TWO_32 = 4294967296;

/** a − b in seconds. Era-safe: two timestamps less than 68 years apart compare right across the 2036 rollover. */
export function timestampDiff(a: NtpTimestamp, b: NtpTimestamp): number {
  return ((a.seconds - b.seconds) | 0) + (a.fraction - b.fraction) / TWO_32;
}

export function timestampsEqual(a: NtpTimestamp, b: NtpTimestamp): boolean {
  return a.seconds === b.seconds && a.fraction === b.fraction;
}

/** NTP short format (unsigned 16.16 seconds) to seconds. */
export function shortToSeconds(raw: number): number {
  return (raw >>> 0) / 65536;
}

/** Seconds to NTP short format, rounded up (a dispersion must not understate) and saturated. */
export function secondsToShort(seconds: number): number {
  if (!(seconds > 0)) return 0;
  return Math.min(0xffffffff, Math.ceil(seconds * 65536)) >>> 0;
}

/** Four ASCII characters as a reference id (kiss codes, stratum-1 source names). */
export function asciiId(text: string): number {
  let v = 0;
  for (let i = 0; i < 4; i++) v = (v << 8) | (i < text.length ? text.charCodeAt(i) & 0x7f : 0);
  return v >>> 0;
}

/** A reference id as text: ASCII for kiss codes and stratum 1, dotted quad otherwise. */
export function referenceIdText(id: number, stratum: number): string {
  if (stratum <= 1) {
    let s = '';
    for (let shift = 24; shift >= 0; shift -= 8) {
      const c = (id >>> shift) & 255;
      if (c === 0) break;
      s += c >= 32 && c < 127 ? String.fromCharCode(c) : '?';
    }
    return s;
  }
  return `${id >>> 24}.${(id >>> 16) & 255}.${(id >>> 8) & 255}.${id & 255}`;
}

/** Kiss codes this server sends or a client must act on (RFC 5905 7.4). */
export const Kiss = {
  RATE: asciiId('RATE'),
  DENY: asciiId('DENY'),
  RSTR: asciiId('RSTR'),
} as const;
