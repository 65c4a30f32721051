/**
 * The cache of forwarded answers. It keeps the upstream's response bytes as
 * they came (their name compression intact) with the offsets of every TTL;
 * a hit copies them, sets the client's id and question bytes, and ages each
 * TTL by the time spent in the cache. Positive answers live for their
 * smallest TTL, negative ones for the SOA's bound (RFC 2308 5); both are
 * capped by the configuration, and no TTL handed out outlives the entry.
 * When full, the oldest entry goes first.
 */
import { Flag, HEADER_LENGTH, Rcode } from '../../../protocols/dns/constants.ts';
import type { DnsQuery } from '../../../protocols/dns/query.ts';
import type { ResponseScan } from '../../../protocols/dns/scan.ts';

export interface CacheLimits {
  /** Entries kept; 0 disables the cache. */
  readonly size: number;
  /** Seconds. */
  readonly maxTtl: number;
  readonly maxNegativeTtl: number;
}

interface Entry {
  readonly bytes: Buffer;
  readonly ttlOffsets: readonly number[];
  readonly storedAt: number;
  readonly expiresAt: number;
}

export class AnswerCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly limits: CacheLimits, private readonly clock: () => number = Date.now) {}

  get size(): number { return this.entries.size; }

  /**
   * What varies the answer besides the name and type: EDNS (an OPT record
   * must not go to a client that sent none), the DO and CD bits.
   */
  private key(q: DnsQuery): string {
    const variant = (q.edns ? (q.edns.dnssecOk ? 'd' : 'e') : '-') + (q.flags & Flag.CD ? 'c' : '-');
    return `${q.type}/${q.class}/${variant}/${q.name}`;
  }

  /** A fresh copy of the cached response made out to this query, or undefined (a miss, or too large for `limit`). */
  get(raw: Buffer, q: DnsQuery, limit: number): Buffer | undefined {
    if (this.limits.size === 0) return undefined;
    const key = this.key(q);
    const e = this.entries.get(key);
    if (!e) return undefined;
    const now = this.clock();
    if (now >= e.expiresAt) { this.entries.delete(key); return undefined; }
    if (e.bytes.length > limit) return undefined;
    const out = Buffer.allocUnsafe(e.bytes.length);
    e.bytes.copy(out);
    out[0] = q.id >>> 8;
    out[1] = q.id & 0xff;
    // RD as the client sent it; the question as the client wrote it (same length: same name, same type).
    out[2] = (out[2]! & ~(Flag.RD >>> 8)) | ((q.flags & Flag.RD) >>> 8);
    raw.copy(out, HEADER_LENGTH, HEADER_LENGTH, q.questionEnd);
    // Each TTL less the time spent here, and never past the entry's own end (the configured caps).
    const aged = Math.floor((now - e.storedAt) / 1000);
    const left = Math.ceil((e.expiresAt - now) / 1000);
    for (const o of e.ttlOffsets) out.writeUInt32BE(Math.min(left, Math.max(0, e.bytes.readUInt32BE(o) - aged)), o);
    return out;
  }

  /** Keeps an upstream response to `q` if it may be cached (NOERROR or NXDOMAIN, not truncated, a TTL above 0). */
  put(q: DnsQuery, response: Buffer, scan: ResponseScan): void {
    if (this.limits.size === 0) return;
    if ((scan.rcode !== Rcode.NOERROR && scan.rcode !== Rcode.NXDOMAIN) || scan.flags & Flag.TC) return;
    if (scan.questionEnd !== q.questionEnd) return; // not the question we asked
    const ttl = scan.answerCount > 0 && scan.rcode === Rcode.NOERROR
      ? Math.min(scan.minTtl, this.limits.maxTtl)
      : Math.min(scan.negativeTtl ?? 0, this.limits.maxNegativeTtl);
    if (!(ttl > 0)) return;
    const key = this.key(q);
    this.entries.delete(key);
    if (this.entries.size >= this.limits.size) this.entries.delete(this.entries.keys().next().value!);
    const now = this.clock();
    this.entries.set(key, { bytes: Buffer.from(response), ttlOffsets: scan.ttlOffsets, storedAt: now, expiresAt: now + ttl * 1000 });
  }
}
