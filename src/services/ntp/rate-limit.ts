/**
 * Per-client response rate limit: a token bucket per source address, in a
 * fixed table so a flood from many (spoofed) addresses costs no memory and no
 * garbage. The table is direct-mapped by a hash of the address. Addresses
 * that collide share one bucket, debt included: a new address in a used slot
 * inherits what is left of the bucket rather than a full one, so a sender
 * alternating the victim's address with a colliding one cannot reset the
 * victim's limit (it could when a collision started a fresh bucket). The
 * cost falls on the rare honest client that collides with a flooded address:
 * it is limited too until the bucket refills (docs/ntp.md#security).
 */
import type { Reading } from './clock.ts';

export const Verdict = {
  /** Within the limit: answer with the time. */
  ANSWER: 0,
  /** Over the limit, and this one of each 2^leak excess requests: answer with a RATE kiss-o'-death. */
  KISS: 1,
  /** Over the limit: drop. */
  DROP: 2,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

export interface RateLimitOptions {
  /** Replies per second a client may sustain. */
  readonly rate: number;
  /** Replies a quiet client may take at once. */
  readonly burst: number;
  /** One excess request in 2^leak gets a kiss-o'-death. */
  readonly leak: number;
  /** Table size (rounded up to a power of two). */
  readonly clients: number;
}

export class ClientRateLimiter {
  private readonly mask: number;
  /** 32 minus the table's bits: the hash's top bits pick the slot. */
  private readonly shift: number;
  private readonly tokens: Float64Array;
  private readonly seen: Float64Array;
  private readonly excess: Uint32Array;
  private readonly leakMask: number;
  private readonly perMs: number;

  constructor(private readonly opts: RateLimitOptions) {
    const size = 2 ** Math.ceil(Math.log2(Math.max(2, opts.clients)));
    this.mask = size - 1;
    this.shift = 32 - Math.log2(size);
    // An empty slot is a full bucket last seen at the dawn of time.
    this.tokens = new Float64Array(size).fill(opts.burst);
    this.seen = new Float64Array(size).fill(-Infinity);
    this.excess = new Uint32Array(size);
    this.leakMask = 2 ** opts.leak - 1;
    this.perMs = opts.rate / 1000;
  }

  /** `address`: the client's IPv4 address as an integer. */
  check(address: number, now: Reading): Verdict {
    // A multiplicative hash of the address (Knuth): neighbouring addresses land far apart.
    const slot = (Math.imul(address, 0x9e3779b1) >>> this.shift) & this.mask;
    const tokens = Math.min(this.opts.burst, this.tokens[slot]! + (now - this.seen[slot]!) * this.perMs);
    this.seen[slot] = now;
    if (tokens >= 1) {
      this.tokens[slot] = tokens - 1;
      this.excess[slot] = 0;
      return Verdict.ANSWER;
    }
    this.tokens[slot] = tokens;
    const n = (this.excess[slot]! + 1) >>> 0;
    this.excess[slot] = n;
    return (n & this.leakMask) === 0 ? Verdict.KISS : Verdict.DROP;
  }
}
