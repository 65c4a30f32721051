/**
 * DNS response encoding. Records are encoded by dns-packet once, when an
 * answer is first compiled (never per query); a response is then our
 * 12-byte header, the query's own question bytes (the client's letter case
 * kept, which 0x20-randomising resolvers check), those record bytes, and an
 * OPT record when the query had one.
 *
 * dns-packet does not compress names. Record owners are nearly always the
 * question name or one of its suffixes (the zone apex of an SOA), so those
 * are written here as a pointer into the question (RFC 1035 4.1.4), which is
 * where compression pays; names inside record data stay whole (RFC 2782
 * forbids compressing SRV targets anyway).
 */
import packet, { type Answer } from 'dns-packet';
import { EDNS_DO, Flag, HEADER_LENGTH, MAX_UDP_PLAIN, OPT_RECORD_LENGTH, RecordType } from './constants.ts';
import type { DnsQuery } from './query.ts';

/** Encoded records of a response's answer, authority and additional sections. */
export interface Sections {
  readonly an: number;
  readonly ns: number;
  readonly ar: number;
  readonly bytes: Buffer;
}

export const EMPTY_SECTIONS: Sections = { an: 0, ns: 0, ar: 0, bytes: Buffer.alloc(0) };

/** Wire length of a name given in presentation form (no escapes). */
export function nameWireLength(name: string): number {
  return name === '' ? 1 : Buffer.byteLength(name) + 2;
}

/**
 * Where `owner` starts inside the question name `qname`, as an offset in the
 * message, when it is the question name or a suffix of it; else undefined.
 */
function ownerPointer(qname: string, owner: string): number | undefined {
  if (owner === qname) return HEADER_LENGTH;
  if (owner === '' || !qname.endsWith(owner) || qname[qname.length - owner.length - 1] !== '.') return undefined;
  return HEADER_LENGTH + nameWireLength(qname) - nameWireLength(owner);
}

function encodeRecord(qname: string, record: Answer): Buffer {
  const at = ownerPointer(qname, record.name);
  if (at === undefined) return packet.encode({ answers: [record] }).subarray(HEADER_LENGTH);
  // Encoded with the root as owner (one zero byte), which the pointer then replaces.
  const bytes = packet.encode({ answers: [{ ...record, name: '.' } as Answer] }).subarray(HEADER_LENGTH);
  const out = Buffer.allocUnsafe(bytes.length + 1);
  out[0] = 0xc0 | (at >>> 8);
  out[1] = at & 0xff;
  bytes.copy(out, 2, 1);
  return out;
}

/** Encodes the records of a response to a question for `qname` (lowercase presentation form). */
export function encodeSections(qname: string, answers: readonly Answer[], authorities: readonly Answer[] = [], additionals: readonly Answer[] = []): Sections {
  const parts: Buffer[] = [];
  for (const r of answers) parts.push(encodeRecord(qname, r));
  for (const r of authorities) parts.push(encodeRecord(qname, r));
  for (const r of additionals) parts.push(encodeRecord(qname, r));
  return { an: answers.length, ns: authorities.length, ar: additionals.length, bytes: Buffer.concat(parts) };
}

/** The largest UDP response this query may get: 512, or its EDNS size capped by ours. */
export function udpLimit(q: DnsQuery, ourEdnsSize: number): number {
  if (!q.edns) return MAX_UDP_PLAIN;
  return Math.max(MAX_UDP_PLAIN, Math.min(q.edns.udpSize, ourEdnsSize));
}

/** Length of the response `buildResponse` would produce. */
export function responseLength(q: DnsQuery, s: Sections): number {
  return q.questionEnd + s.bytes.length + (q.edns ? OPT_RECORD_LENGTH : 0);
}

/**
 * A response to `q` (whose datagram is `raw`): flags are the response's own
 * (AA, TC, RA); QR, the opcode, RD and CD come from the query. An rcode
 * above 15 goes into the OPT record's extended bits (RFC 6891 6.1.3).
 */
export function buildResponse(raw: Buffer, q: DnsQuery, flags: number, rcode: number, s: Sections, ourEdnsSize: number): Buffer {
  const edns = q.edns !== undefined;
  const out = Buffer.allocUnsafe(q.questionEnd + s.bytes.length + (edns ? OPT_RECORD_LENGTH : 0));
  const word = Flag.QR | (q.flags & (0x7800 | Flag.RD | Flag.CD)) | flags | (rcode & 0xf);
  out[0] = q.id >>> 8;
  out[1] = q.id & 0xff;
  out[2] = word >>> 8;
  out[3] = word & 0xff;
  out[4] = 0;
  out[5] = 1;
  out[6] = s.an >>> 8;
  out[7] = s.an & 0xff;
  out[8] = s.ns >>> 8;
  out[9] = s.ns & 0xff;
  const ar = s.ar + (edns ? 1 : 0);
  out[10] = ar >>> 8;
  out[11] = ar & 0xff;
  raw.copy(out, HEADER_LENGTH, HEADER_LENGTH, q.questionEnd);
  let p = q.questionEnd;
  if (s.bytes.length) p += s.bytes.copy(out, p);
  if (edns) writeOpt(out, p, ourEdnsSize, rcode >>> 4, q.edns.dnssecOk);
  return out;
}

/** An OPT record with no options; the DO bit is copied from the query (RFC 3225 3). */
function writeOpt(out: Buffer, p: number, udpSize: number, extendedRcode: number, dnssecOk: boolean): void {
  out[p] = 0;
  out[p + 1] = 0;
  out[p + 2] = RecordType.OPT;
  out[p + 3] = udpSize >>> 8;
  out[p + 4] = udpSize & 0xff;
  out[p + 5] = extendedRcode;
  out[p + 6] = 0;
  out[p + 7] = dnssecOk ? EDNS_DO >>> 8 : 0;
  out[p + 8] = 0;
  out[p + 9] = 0;
  out[p + 10] = 0;
}

/**
 * A header-only error response for a query whose question could not be read
 * (FORMERR): the query's id, opcode and RD, no sections.
 */
export function headerOnlyResponse(raw: Buffer, rcode: number): Buffer {
  const out = Buffer.alloc(HEADER_LENGTH);
  out[0] = raw[0]!;
  out[1] = raw[1]!;
  const word = Flag.QR | (((raw[2]! << 8) | raw[3]!) & (0x7800 | Flag.RD)) | (rcode & 0xf);
  out[2] = word >>> 8;
  out[3] = word & 0xff;
  return out;
}

/** Sets a new id in a datagram (a forwarded query or a cached response); returns the old one. */
export function swapId(buf: Buffer, id: number): number {
  const old = (buf[0]! << 8) | buf[1]!;
  buf[0] = id >>> 8;
  buf[1] = id & 0xff;
  return old;
}
