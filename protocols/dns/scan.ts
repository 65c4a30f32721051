/**
 * Reading a response from an upstream resolver just enough to cache it:
 * where each record's TTL sits (to age them on a cache hit without
 * re-encoding, which would lose the upstream's name compression), the
 * smallest TTL, and for a negative answer the SOA's TTL bound (RFC 2308 5).
 */
import { HEADER_LENGTH, RecordType } from './constants.ts';
import { DnsDecodeError } from './errors.ts';
import { skipName } from './name.ts';

export interface ResponseScan {
  readonly id: number;
  readonly flags: number;
  /** The header's 4-bit rcode (an OPT record can extend it; not needed for caching). */
  readonly rcode: number;
  readonly answerCount: number;
  /** Offsets of the 32-bit TTL fields of every record but OPT. */
  readonly ttlOffsets: readonly number[];
  /** The smallest TTL among those records (Infinity when there are none). */
  readonly minTtl: number;
  /** min(SOA TTL, SOA MINIMUM) of an SOA in the authority section: the negative-caching TTL. */
  readonly negativeTtl: number | undefined;
  /** Offset just past the question section. */
  readonly questionEnd: number;
}

export function scanResponse(buf: Buffer): ResponseScan {
  const len = buf.length;
  if (len < HEADER_LENGTH) throw new DnsDecodeError('short');
  const flags = (buf[2]! << 8) | buf[3]!;
  const qdcount = (buf[4]! << 8) | buf[5]!;
  const ancount = (buf[6]! << 8) | buf[7]!;
  const nscount = (buf[8]! << 8) | buf[9]!;
  const arcount = (buf[10]! << 8) | buf[11]!;
  let p = HEADER_LENGTH;
  for (let i = 0; i < qdcount; i++) {
    p = skipName(buf, p) + 4;
    if (p > len) throw new DnsDecodeError('truncated');
  }
  const questionEnd = p;
  const ttlOffsets: number[] = [];
  let minTtl = Infinity;
  let negativeTtl: number | undefined;
  const total = ancount + nscount + arcount;
  for (let r = 0; r < total; r++) {
    p = skipName(buf, p);
    if (p + 10 > len) throw new DnsDecodeError('truncated');
    const type = buf.readUInt16BE(p);
    const ttl = buf.readUInt32BE(p + 4);
    const rdlength = buf.readUInt16BE(p + 8);
    const rdata = p + 10;
    if (rdata + rdlength > len) throw new DnsDecodeError('truncated');
    if (type !== RecordType.OPT) {
      ttlOffsets.push(p + 4);
      if (ttl < minTtl) minTtl = ttl;
      if (type === RecordType.SOA && r >= ancount && r < ancount + nscount) {
        // SOA RDATA: MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM; MINIMUM is the last 4 octets.
        if (rdlength < 22) throw new DnsDecodeError('truncated');
        const minimum = buf.readUInt32BE(rdata + rdlength - 4);
        negativeTtl = Math.min(ttl, minimum);
      }
    }
    p = rdata + rdlength;
  }
  return { id: (buf[0]! << 8) | buf[1]!, flags, rcode: flags & 0xf, answerCount: ancount, ttlOffsets, minTtl, negativeTtl, questionEnd };
}
