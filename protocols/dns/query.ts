/**
 * DNS query decoding: the header, exactly one question and the EDNS OPT
 * record (RFC 1035 4.1, RFC 6891). Hand-written rather than dns-packet's
 * decode for two reasons, both measured (see README.md): it is several times
 * faster on the one shape every query has, and it validates what dns-packet
 * lets through (a question name with compression pointers, a second OPT
 * record, an OPT record off the root) while keeping the exact bytes of the
 * question, which the response echoes with the client's letter case.
 */
import { EDNS_DO, HEADER_LENGTH, MAX_LABEL_LENGTH, MAX_NAME_LENGTH, RecordType } from './constants.ts';
import { DnsDecodeError } from './errors.ts';
import { skipName } from './name.ts';

export { DnsDecodeError, type DecodeFailure } from './errors.ts';

export interface Edns {
  /** The largest UDP response the client accepts (values under 512 mean 512). */
  readonly udpSize: number;
  readonly version: number;
  readonly dnssecOk: boolean;
}

export interface DnsQuery {
  readonly id: number;
  /** The header's flags word as sent (QR clear). */
  readonly flags: number;
  readonly opcode: number;
  /**
   * The question name, lowercase, in presentation form without the final
   * dot ('' is the root). Bytes that are not plain printable ASCII, and `.`
   * or `\` inside a label, are escaped as `\ddd`, so two different wire names
   * never share a text.
   */
  readonly name: string;
  /** Octets of the question name on the wire (root label included). */
  readonly nameLength: number;
  readonly type: number;
  readonly class: number;
  /** Offset just past the question: header and question are bytes [0, questionEnd). */
  readonly questionEnd: number;
  readonly edns: Edns | undefined;
}

// Presentation text is built here: 255 wire octets need at most 4 characters each (\ddd).
const scratch = Buffer.allocUnsafe(MAX_NAME_LENGTH * 4);
const DIGITS = '0123456789';

/** Decodes a query; throws DnsDecodeError with the reason when it is malformed. */
export function decodeQuery(buf: Buffer): DnsQuery {
  const len = buf.length;
  if (len < HEADER_LENGTH) throw new DnsDecodeError('short');
  const flags = (buf[2]! << 8) | buf[3]!;
  if (flags & 0x8000) throw new DnsDecodeError('response');
  if (buf[4] !== 0 || buf[5] !== 1) throw new DnsDecodeError('question-count');

  // The question name. Nothing precedes it but the header, so a compression pointer here is never valid.
  let p = HEADER_LENGTH;
  let o = 0;
  for (;;) {
    if (p >= len) throw new DnsDecodeError('truncated');
    const l = buf[p]!;
    if (l === 0) { p++; break; }
    if (l > MAX_LABEL_LENGTH) throw new DnsDecodeError((l & 0xc0) === 0xc0 ? 'pointer' : 'label-type');
    const end = p + 1 + l;
    if (end > len) throw new DnsDecodeError('truncated');
    // end - 12 octets so far, plus the root label still to come.
    if (end - HEADER_LENGTH + 1 > MAX_NAME_LENGTH) throw new DnsDecodeError('name-too-long');
    if (o > 0) scratch[o++] = 0x2e;
    for (let i = p + 1; i < end; i++) {
      const c = buf[i]!;
      if (c >= 0x41 && c <= 0x5a) scratch[o++] = c | 0x20;
      else if (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c) scratch[o++] = c;
      else {
        scratch[o++] = 0x5c;
        scratch[o++] = DIGITS.charCodeAt((c / 100) | 0);
        scratch[o++] = DIGITS.charCodeAt(((c / 10) | 0) % 10);
        scratch[o++] = DIGITS.charCodeAt(c % 10);
      }
    }
    p = end;
  }
  const nameLength = p - HEADER_LENGTH;
  if (p + 4 > len) throw new DnsDecodeError('truncated');
  const type = (buf[p]! << 8) | buf[p + 1]!;
  const klass = (buf[p + 2]! << 8) | buf[p + 3]!;
  const questionEnd = p + 4;

  // Answer and authority records are unusual in a query but legal; walk them to reach the additional section.
  const ancount = (buf[6]! << 8) | buf[7]!;
  const nscount = (buf[8]! << 8) | buf[9]!;
  const arcount = (buf[10]! << 8) | buf[11]!;
  let edns: Edns | undefined;
  p = questionEnd;
  const records = ancount + nscount + arcount;
  for (let r = 0; r < records; r++) {
    const nameStart = p;
    p = skipName(buf, p);
    if (p + 10 > len) throw new DnsDecodeError('truncated');
    const rtype = (buf[p]! << 8) | buf[p + 1]!;
    const rdlength = (buf[p + 8]! << 8) | buf[p + 9]!;
    if (rtype === RecordType.OPT) {
      // RFC 6891 6.1.1: one OPT record, in the additional section, owned by the root.
      if (edns || r < ancount + nscount || p !== nameStart + 1) throw new DnsDecodeError('opt');
      edns = {
        udpSize: (buf[p + 2]! << 8) | buf[p + 3]!,
        version: buf[p + 5]!,
        dnssecOk: (((buf[p + 6]! << 8) | buf[p + 7]!) & EDNS_DO) !== 0,
      };
    }
    p += 10 + rdlength;
    if (p > len) throw new DnsDecodeError('truncated');
  }

  return {
    id: (buf[0]! << 8) | buf[1]!,
    flags,
    opcode: (flags >>> 11) & 0xf,
    name: o === 0 ? '' : scratch.toString('latin1', 0, o),
    nameLength,
    type,
    class: klass,
    questionEnd,
    edns,
  };
}

/**
 * A query message with one question (our own questions to upstreams, and
 * tests). `name` is in presentation form without escapes.
 */
export function encodeQuery(id: number, name: string, type: number, flags: number): Buffer {
  const labels = name === '' ? [] : name.split('.');
  const out = Buffer.alloc(HEADER_LENGTH + labels.reduce((n, l) => n + 1 + Buffer.byteLength(l), 1) + 4);
  out.writeUInt16BE(id, 0);
  out.writeUInt16BE(flags & 0x7fff, 2);
  out.writeUInt16BE(1, 4);
  let p = HEADER_LENGTH;
  for (const l of labels) {
    const n = out.write(l, p + 1, 'utf8');
    if (n === 0 || n > MAX_LABEL_LENGTH) throw new RangeError(`cannot encode ${JSON.stringify(name)}: a label is empty or over 63 octets`);
    out[p] = n;
    p += 1 + n;
  }
  out[p++] = 0;
  out.writeUInt16BE(type, p);
  out.writeUInt16BE(1, p + 2);
  return out;
}
