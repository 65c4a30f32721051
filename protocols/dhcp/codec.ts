/**
 * DHCPv4 wire codec (RFC 2131 message format, RFC 2132 options, RFC 3396 long
 * options, option overload of `file`/`sname`). Bytes in, typed message out; no
 * sockets, clocks or config. See README.md for why this is ours and not the
 * `dhcp` npm package's.
 */
import { Opt } from './options.ts';

export const MAGIC_COOKIE = 0x63825363;
/** Fixed BOOTP header (236 bytes) plus the magic cookie. */
export const HEADER_LENGTH = 240;
/** RFC 2131: every client must accept 576-byte messages; larger only if it says so (option 57). */
export const MIN_MAX_MESSAGE_SIZE = 576;
/** BOOTP relays and old clients expect at least 300 bytes (RFC 1542). */
const MIN_MESSAGE_LENGTH = 300;
/** IP (20) + UDP (8) headers: option 57 counts the whole IP datagram. */
export const IP_UDP_OVERHEAD = 28;

const SNAME_OFFSET = 44;
const SNAME_LENGTH = 64;
const FILE_OFFSET = 108;
const FILE_LENGTH = 128;

export interface DhcpMessage {
  /** 1 = BOOTREQUEST, 2 = BOOTREPLY. */
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  /** Bit 15 (0x8000) is the broadcast flag. */
  flags: number;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  /** Always 16 bytes; the first `hlen` are the hardware address. */
  chaddr: Buffer;
  /** Server host name field, when not used for options. */
  sname: string;
  /** Boot file name field, when not used for options. */
  file: string;
  /**
   * Options by code, in the order first seen. A code that appears several
   * times (RFC 3396) is concatenated; options carried in an overloaded
   * `file`/`sname` are merged in.
   */
  options: Map<number, Buffer>;
}

export type DecodeFailure =
  | 'short'          // fewer than 240 bytes
  | 'cookie'         // no DHCP magic cookie: a plain BOOTP or non-DHCP packet
  | 'option-length'  // an option's length runs past the end of its field
  | 'hlen';          // hardware address length over 16

export class DhcpDecodeError extends Error {
  constructor(readonly reason: DecodeFailure, detail: string) {
    super(detail);
    this.name = 'DhcpDecodeError';
  }
}

function readCString(buf: Buffer, offset: number, length: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('latin1', offset, end === -1 || end > offset + length ? offset + length : end);
}

/** Parses options from buf[start, end) into `into`; returns whether END was seen. */
function parseOptions(buf: Buffer, start: number, end: number, into: Map<number, Buffer>): void {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === Opt.PAD) { i++; continue; }
    if (code === Opt.END) return;
    if (i + 1 >= end) throw new DhcpDecodeError('option-length', `option ${code} at byte ${i} has no length byte`);
    const len = buf[i + 1]!;
    const valueStart = i + 2;
    if (valueStart + len > end) throw new DhcpDecodeError('option-length', `option ${code} at byte ${i} claims ${len} bytes, only ${end - valueStart} remain`);
    const value = buf.subarray(valueStart, valueStart + len);
    const prior = into.get(code);
    into.set(code, prior ? Buffer.concat([prior, value]) : value);
    i = valueStart + len;
  }
}

/**
 * Decodes one DHCP message. Throws DhcpDecodeError for anything malformed; the
 * returned buffers are views into `buf`, which must not be reused while the
 * message is in use.
 */
export function decode(buf: Buffer): DhcpMessage {
  if (buf.length < HEADER_LENGTH) throw new DhcpDecodeError('short', `${buf.length} bytes is shorter than a DHCP header (240)`);
  if (buf.readUInt32BE(236) !== MAGIC_COOKIE) throw new DhcpDecodeError('cookie', 'no DHCP magic cookie at byte 236');
  const hlen = buf[2]!;
  if (hlen > 16) throw new DhcpDecodeError('hlen', `hardware address length ${hlen} exceeds 16`);
  const options = new Map<number, Buffer>();
  parseOptions(buf, HEADER_LENGTH, buf.length, options);
  const overload = options.get(Opt.OVERLOAD)?.[0] ?? 0;
  // RFC 2131 4.1: the file field is read before sname.
  if (overload & 1) parseOptions(buf, FILE_OFFSET, FILE_OFFSET + FILE_LENGTH, options);
  if (overload & 2) parseOptions(buf, SNAME_OFFSET, SNAME_OFFSET + SNAME_LENGTH, options);
  return {
    op: buf[0]!,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: buf.readUInt32BE(12),
    yiaddr: buf.readUInt32BE(16),
    siaddr: buf.readUInt32BE(20),
    giaddr: buf.readUInt32BE(24),
    chaddr: buf.subarray(28, 44),
    sname: overload & 2 ? '' : readCString(buf, SNAME_OFFSET, SNAME_LENGTH),
    file: overload & 1 ? '' : readCString(buf, FILE_OFFSET, FILE_LENGTH),
    options,
  };
}

/** Bytes one option takes on the wire, split into 255-byte pieces (RFC 3396). */
function optionWireLength(value: Buffer): number {
  const pieces = Math.max(1, Math.ceil(value.length / 255));
  return value.length + 2 * pieces;
}

function writeOption(buf: Buffer, at: number, code: number, value: Buffer): number {
  let off = 0;
  do {
    const len = Math.min(255, value.length - off);
    buf[at++] = code;
    buf[at++] = len;
    value.copy(buf, at, off, off + len);
    at += len;
    off += len;
  } while (off < value.length);
  return at;
}

export interface EncodeOptions {
  /**
   * Largest DHCP message (from the op byte on) the receiver accepts; the
   * encoder overloads `file` and `sname` and then drops trailing options to
   * stay within it. Default 576 - 28 = 548.
   */
  readonly maxLength?: number;
}

/**
 * Encodes a message. Options are written in map order, so put the ones that
 * must survive (53, 54, 51, ...) first: if they do not all fit even with
 * overload, the encoder drops from the end and reports which were dropped.
 */
export function encode(msg: DhcpMessage, opts: EncodeOptions = {}): { bytes: Buffer; dropped: number[] } {
  const maxLength = Math.max(opts.maxLength ?? MIN_MAX_MESSAGE_SIZE - IP_UDP_OVERHEAD, MIN_MAX_MESSAGE_SIZE - IP_UDP_OVERHEAD);
  let total = 0;
  for (const [code, value] of msg.options) if (!notWritten(code)) total += optionWireLength(value);

  // Which options go where: main area first, then file, then sname (overload).
  // The common case, everything in the main area, needs no lists at all.
  const mainRoom = maxLength - HEADER_LENGTH - 1; // 1 for END
  let main: Array<[number, Buffer]> | undefined;
  const inFile: Array<[number, Buffer]> = [];
  const inSname: Array<[number, Buffer]> = [];
  const dropped: number[] = [];
  let mainLength = total;
  if (total > mainRoom) {
    main = [];
    mainLength = 0;
    // Overload: 3 bytes of option 52 in the main area; file/sname each keep 1 byte for END.
    let mainLeft = mainRoom - 3;
    let fileLeft = msg.file ? 0 : FILE_LENGTH - 1;
    let snameLeft = msg.sname ? 0 : SNAME_LENGTH - 1;
    for (const e of msg.options) {
      if (notWritten(e[0])) continue;
      const len = optionWireLength(e[1]);
      if (len <= mainLeft) { main.push(e); mainLeft -= len; mainLength += len; }
      else if (len <= fileLeft) { inFile.push(e); fileLeft -= len; }
      else if (len <= snameLeft) { inSname.push(e); snameLeft -= len; }
      else dropped.push(e[0]);
    }
  }
  const overload = (inFile.length ? 1 : 0) | (inSname.length ? 2 : 0);

  const length = Math.max(MIN_MESSAGE_LENGTH, HEADER_LENGTH + mainLength + (overload ? 3 : 0) + 1);
  // From Node's shared pool (a reply is copied into a send slot and dropped), zeroed for the unused header fields.
  const buf = Buffer.allocUnsafe(length).fill(0);
  buf[0] = msg.op;
  buf[1] = msg.htype;
  buf[2] = msg.hlen;
  buf[3] = msg.hops;
  buf.writeUInt32BE(msg.xid >>> 0, 4);
  buf.writeUInt16BE(msg.secs, 8);
  buf.writeUInt16BE(msg.flags, 10);
  buf.writeUInt32BE(msg.ciaddr >>> 0, 12);
  buf.writeUInt32BE(msg.yiaddr >>> 0, 16);
  buf.writeUInt32BE(msg.siaddr >>> 0, 20);
  buf.writeUInt32BE(msg.giaddr >>> 0, 24);
  msg.chaddr.copy(buf, 28, 0, Math.min(16, msg.chaddr.length));
  if (overload & 2) {
    let at = SNAME_OFFSET;
    for (const [c, v] of inSname) at = writeOption(buf, at, c, v);
    buf[at] = Opt.END;
  } else if (msg.sname) {
    buf.write(msg.sname, SNAME_OFFSET, SNAME_LENGTH - 1, 'latin1');
  }
  if (overload & 1) {
    let at = FILE_OFFSET;
    for (const [c, v] of inFile) at = writeOption(buf, at, c, v);
    buf[at] = Opt.END;
  } else if (msg.file) {
    buf.write(msg.file, FILE_OFFSET, FILE_LENGTH - 1, 'latin1');
  }
  buf.writeUInt32BE(MAGIC_COOKIE, 236);
  let at = HEADER_LENGTH;
  // Options go out in map order; the caller puts the message type first, where every implementation looks for it.
  if (overload) { buf[at++] = Opt.OVERLOAD; buf[at++] = 1; buf[at++] = overload; }
  if (main) for (const [c, v] of main) at = writeOption(buf, at, c, v);
  else for (const [c, v] of msg.options) if (!notWritten(c)) at = writeOption(buf, at, c, v);
  buf[at] = Opt.END;
  return { bytes: buf, dropped };
}

/** Codes the encoder writes itself (overload, END) or never (PAD), whatever the map holds. */
function notWritten(code: number): boolean {
  return code === Opt.PAD || code === Opt.END || code === Opt.OVERLOAD;
}

/** The hardware address, canonical text, for Ethernet-like `hlen` (6) and others. */
export function hardwareAddress(msg: DhcpMessage): Buffer {
  return msg.chaddr.subarray(0, Math.min(msg.hlen, 16));
}
