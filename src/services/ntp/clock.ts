/**
 * The time bootherd serves: the head's system clock (CLOCK_REALTIME), read
 * with sub-microsecond resolution.
 *
 * Node offers the system clock only as Date.now() (whole milliseconds) and a
 * fine clock only as a monotonic one (performance.now(), CLOCK_MONOTONIC in
 * nanoseconds). On Linux the two run at exactly the same rate — slewing and
 * frequency corrections by chronyd or adjtimex apply to both — and differ by
 * an offset that changes only when the system clock is stepped. So this clock
 * is the monotonic reading plus an anchor (the system time at monotonic zero),
 * measured at the instant Date.now() ticks over to a new millisecond, which
 * pins the anchor to about a microsecond. A check every second compares the
 * two again and re-anchors when the system clock was stepped (settimeofday,
 * chronyd's makestep, a leap second).
 *
 * performance.timeOrigin + performance.now() alone would be microsecond-exact
 * at start but would never follow a step; Date.now() alone would quantise
 * every timestamp to a millisecond.
 */
import { performance } from 'node:perf_hooks';
import type { NtpTimestamp } from '../../../protocols/ntp/codec.ts';

/** Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
export const NTP_UNIX_OFFSET = 2208988800;
const FRACTION_PER_MS = 4294967.296;

/** A clock reading: monotonic milliseconds (performance.now()). Cheap to take; convert to NTP time later. */
export type Reading = number;

export interface Anchor {
  /** Whole seconds since 1900 (not yet reduced to the 32-bit era) at the anchor's millisecond. */
  readonly seconds: number;
  /** Milliseconds past `seconds` at monotonic reading zero (any sign). */
  readonly ms: number;
  /** Width of the window the millisecond tick was caught in, ms: the anchor's uncertainty. */
  readonly errorMs: number;
}

/**
 * Catches Date.now() ticking to a new millisecond: at that instant the system
 * time is that whole millisecond, known to within one loop iteration. The
 * narrowest of a few tries wins, so a preemption mid-loop does not count.
 */
export function measureAnchor(tries = 3): Anchor {
  let best: Anchor | undefined;
  for (let n = 0; n < tries; n++) {
    const start = Date.now();
    let before = performance.now();
    let tick = start;
    let after = before;
    for (;;) {
      after = performance.now();
      tick = Date.now();
      if (tick !== start) break;
      before = after;
    }
    const errorMs = after - before;
    if (!best || errorMs < best.errorMs) {
      const wholeSeconds = Math.floor(tick / 1000);
      // System time `tick` ms happened between the readings `before` and `after`.
      best = { seconds: NTP_UNIX_OFFSET + wholeSeconds, ms: (tick - wholeSeconds * 1000) - (before + after) / 2, errorMs };
    }
  }
  return best!;
}

/**
 * The clock's precision as NTP reports it: log2 of the smallest step between
 * two successive readings, in seconds, rounded up (e.g. -24 for ~60 ns).
 */
export function measurePrecision(samples = 2000): number {
  let smallest = Infinity;
  let last = performance.now();
  for (let i = 0; i < samples; i++) {
    const now = performance.now();
    const step = now - last;
    if (step > 0 && step < smallest) smallest = step;
    last = now;
  }
  if (!Number.isFinite(smallest)) return -20;
  return Math.max(-32, Math.ceil(Math.log2(smallest / 1000)));
}

export class SystemClock {
  private anchor: Anchor;
  /** Signed log2 seconds, for the precision field of every reply. */
  readonly precision: number;

  constructor() {
    this.anchor = measureAnchor();
    this.precision = measurePrecision();
  }

  /** Take a reading: first thing when a datagram arrives, last thing before one leaves. */
  read(): Reading {
    return performance.now();
  }

  /** The NTP time of a reading, written into `into` (no allocation). */
  toNtp(reading: Reading, into: NtpTimestamp): NtpTimestamp {
    const ms = this.anchor.ms + reading;
    const whole = Math.floor(ms / 1000);
    into.seconds = (this.anchor.seconds + whole) % 4294967296;
    into.fraction = Math.min(0xffffffff, Math.floor((ms - whole * 1000) * FRACTION_PER_MS));
    return into;
  }

  /**
   * The NTP time of a kernel timestamp (Unix seconds and nanoseconds, as
   * lastReceiveTime gives it) when it is plausible for a datagram handled at
   * `reading`: no later than the reading, no more than a second before it.
   * Otherwise the reading's own time. Returns whether the kernel's was used.
   */
  kernelToNtp(unix: Float64Array, reading: Reading, into: NtpTimestamp): boolean {
    const lag = this.toUnixMs(reading) - (unix[0]! * 1000 + unix[1]! / 1e6);
    if (!(lag > -0.05 && lag < 1000)) { this.toNtp(reading, into); return false; }
    into.seconds = (unix[0]! + NTP_UNIX_OFFSET) % 4294967296;
    into.fraction = Math.min(0xffffffff, Math.floor(unix[1]! * 4.294967296));
    return true;
  }

  /** Unix milliseconds of a reading (logs, status; not exact enough for the wire). */
  toUnixMs(reading: Reading): number {
    return (this.anchor.seconds - NTP_UNIX_OFFSET) * 1000 + this.anchor.ms + reading;
  }

  /** Seconds of uncertainty in the anchor, added to the root dispersion we report. */
  get anchorError(): number {
    return this.anchor.errorMs / 1000 + 1e-6; // + the system clock's own microsecond resolution
  }

  /**
   * Compares with Date.now() and re-anchors if the system clock was stepped.
   * Date.now() truncates, so without a step it reads 0-1 ms below our time;
   * anything outside that window (with a little slack) is a step. Returns the
   * step in milliseconds, or undefined.
   */
  checkStep(): number | undefined {
    // A preemption between the two reads looks like a step: it must show three times in a row.
    for (let i = 0; i < 3; i++) {
      const lag = Date.now() - this.toUnixMs(this.read());
      if (lag <= 0.05 && lag >= -1.05) return undefined;
    }
    const before = this.toUnixMs(this.read());
    this.anchor = measureAnchor();
    return this.toUnixMs(this.read()) - before;
  }
}
