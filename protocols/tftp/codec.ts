/**
 * TFTP wire codec: RFC 1350 packets (RRQ, WRQ, DATA, ACK, ERROR) and the
 * RFC 2347 OACK, with request options kept as text (RFC 2348 blksize, RFC 2349
 * timeout/tsize, RFC 7440 windowsize are interpreted by the service, not
 * here). Bytes in, typed values out; no sockets, clocks or config. See
 * README.md for why this is ours and not the `tftp` npm package's.
 *
 * Strings are decoded as latin1 so that every byte maps to one character and
 * back: a file name is reported exactly as sent, and the service decides what
 * it accepts.
 */

export const Op = {
  RRQ: 1,
  WRQ: 2,
  DATA: 3,
  ACK: 4,
  ERROR: 5,
  OACK: 6,
} as const;

/** RFC 1350 and RFC 2347 error codes. */
export const ErrorCode = {
  /** Not defined, see the message. */
  UNDEFINED: 0,
  FILE_NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TRANSFER_ID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  /** RFC 2347: the client refuses the options in an OACK. */
  OPTION_REFUSED: 8,
} as const;

/** DATA and ACK carry a 4-byte header: opcode and block number. */
export const DATA_HEADER_LENGTH = 4;
/** RFC 1350's block size, used when no blksize option is negotiated. */
export const DEFAULT_BLOCK_SIZE = 512;
/** RFC 2348 bounds for blksize. */
export const MIN_BLOCK_SIZE = 8;
export const MAX_BLOCK_SIZE = 65464;
/** RFC 7440 bounds for windowsize. */
export const MIN_WINDOW_SIZE = 1;
export const MAX_WINDOW_SIZE = 65535;

export interface TftpRequest {
  readonly op: typeof Op.RRQ | typeof Op.WRQ;
  readonly filename: string;
  /** As sent (netascii, octet, mail, in any letter case). */
  readonly mode: string;
  /**
   * Options in the order sent, names lowercased (RFC 2347: case-insensitive),
   * values as sent. A repeated name keeps its first value.
   */
  readonly options: ReadonlyMap<string, string>;
  /**
   * Strings after the mode that do not form name/value pairs: an odd one out,
   * or what follows a NUL inside the file name. Kept so the service can tell
   * a NUL-in-the-name trick from an ordinary request.
   */
  readonly extra: readonly string[];
}

export interface TftpData {
  readonly op: typeof Op.DATA;
  readonly block: number;
  /** A view into the decoded buffer, not a copy. */
  readonly data: Buffer;
}

export interface TftpAck {
  readonly op: typeof Op.ACK;
  readonly block: number;
}

export interface TftpError {
  readonly op: typeof Op.ERROR;
  readonly code: number;
  readonly message: string;
}

export interface TftpOack {
  readonly op: typeof Op.OACK;
  readonly options: ReadonlyMap<string, string>;
}

export type TftpPacket = TftpRequest | TftpData | TftpAck | TftpError | TftpOack;

export type DecodeFailure =
  | 'short'         // fewer bytes than the opcode's fixed part
  | 'opcode'        // opcode outside 1-6
  | 'unterminated'  // a string without its terminating NUL
  | 'empty-name';   // a request without a file name

export class TftpDecodeError extends Error {
  constructor(readonly reason: DecodeFailure, detail: string) {
    super(detail);
    this.name = 'TftpDecodeError';
  }
}

/** Splits NUL-terminated strings from `start`; throws if the last one is not terminated. */
function readStrings(buf: Buffer, start: number): string[] {
  const out: string[] = [];
  let i = start;
  while (i < buf.length) {
    const end = buf.indexOf(0, i);
    if (end === -1) throw new TftpDecodeError('unterminated', `string at byte ${i} has no terminating NUL`);
    out.push(buf.toString('latin1', i, end));
    i = end + 1;
  }
  return out;
}

function readOptions(strings: readonly string[], from: number): { options: Map<string, string>; extra: string[] } {
  const options = new Map<string, string>();
  const extra: string[] = [];
  let i = from;
  for (; i + 1 < strings.length; i += 2) {
    const name = strings[i]!.toLowerCase();
    if (!options.has(name)) options.set(name, strings[i + 1]!);
  }
  if (i < strings.length) extra.push(strings[i]!);
  return { options, extra };
}

/** Decodes one datagram; throws TftpDecodeError for anything malformed. */
export function decode(buf: Buffer): TftpPacket {
  if (buf.length < 2) throw new TftpDecodeError('short', `${buf.length} bytes: no opcode`);
  const op = buf.readUInt16BE(0);
  switch (op) {
    case Op.RRQ:
    case Op.WRQ: {
      const strings = readStrings(buf, 2);
      if (strings.length < 2) throw new TftpDecodeError('short', 'a request needs a file name and a mode');
      if (strings[0] === '') throw new TftpDecodeError('empty-name', 'the file name is empty');
      const { options, extra } = readOptions(strings, 2);
      return { op, filename: strings[0]!, mode: strings[1]!, options, extra };
    }
    case Op.DATA:
      if (buf.length < DATA_HEADER_LENGTH) throw new TftpDecodeError('short', `DATA of ${buf.length} bytes has no block number`);
      return { op, block: buf.readUInt16BE(2), data: buf.subarray(DATA_HEADER_LENGTH) };
    case Op.ACK:
      if (buf.length < DATA_HEADER_LENGTH) throw new TftpDecodeError('short', `ACK of ${buf.length} bytes has no block number`);
      return { op, block: buf.readUInt16BE(2) };
    case Op.ERROR: {
      if (buf.length < 4) throw new TftpDecodeError('short', `ERROR of ${buf.length} bytes has no error code`);
      // Some clients omit the message's NUL (or the whole message): accept what is there.
      const end = buf.indexOf(0, 4);
      return { op, code: buf.readUInt16BE(2), message: buf.toString('latin1', 4, end === -1 ? buf.length : end) };
    }
    case Op.OACK: {
      const strings = readStrings(buf, 2);
      if (strings.length % 2) throw new TftpDecodeError('unterminated', 'OACK option without a value');
      return { op, options: readOptions(strings, 0).options };
    }
    default:
      throw new TftpDecodeError('opcode', `opcode ${op} is not a TFTP opcode (1-6)`);
  }
}

function stringsLength(parts: Iterable<string>): number {
  let n = 0;
  for (const s of parts) n += Buffer.byteLength(s, 'latin1') + 1;
  return n;
}

function writeStrings(buf: Buffer, offset: number, parts: Iterable<string>): number {
  for (const s of parts) {
    offset += buf.write(s, offset, 'latin1');
    buf[offset++] = 0;
  }
  return offset;
}

function* flatten(options: ReadonlyMap<string, string>): Iterable<string> {
  for (const [k, v] of options) { yield k; yield v; }
}

export function encodeRequest(req: Omit<TftpRequest, 'extra'> & { readonly extra?: readonly string[] }): Buffer {
  const parts = [req.filename, req.mode, ...flatten(req.options), ...(req.extra ?? [])];
  const buf = Buffer.allocUnsafe(2 + stringsLength(parts));
  buf.writeUInt16BE(req.op, 0);
  writeStrings(buf, 2, parts);
  return buf;
}

export function encodeOack(options: ReadonlyMap<string, string>): Buffer {
  const buf = Buffer.allocUnsafe(2 + stringsLength(flatten(options)));
  buf.writeUInt16BE(Op.OACK, 0);
  writeStrings(buf, 2, flatten(options));
  return buf;
}

export function encodeAck(block: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt16BE(Op.ACK, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  return buf;
}

export function encodeError(code: number, message: string): Buffer {
  const buf = Buffer.allocUnsafe(4 + stringsLength([message]));
  buf.writeUInt16BE(Op.ERROR, 0);
  buf.writeUInt16BE(code, 2);
  writeStrings(buf, 4, [message]);
  return buf;
}

/**
 * The 4-byte header of a DATA packet. Senders pass [header, payload] to a
 * scatter send so the payload (a view of a shared file buffer) is never
 * copied; `encodeData` joins them for tests and tools.
 */
export function encodeDataHeader(block: number): Buffer {
  const buf = Buffer.allocUnsafe(DATA_HEADER_LENGTH);
  buf.writeUInt16BE(Op.DATA, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  return buf;
}

export function encodeData(block: number, data: Buffer): Buffer {
  return Buffer.concat([encodeDataHeader(block), data]);
}

/** Encodes any packet (tests, tools); the service uses the specific encoders. */
export function encode(p: TftpPacket): Buffer {
  switch (p.op) {
    case Op.RRQ:
    case Op.WRQ: return encodeRequest(p);
    case Op.DATA: return encodeData(p.block, p.data);
    case Op.ACK: return encodeAck(p.block);
    case Op.ERROR: return encodeError(p.code, p.message);
    case Op.OACK: return encodeOack(p.options);
  }
}
