/**
 * One time source this head polls as an NTP client — an upstream server or
 * another head — with the RFC 5905 packet checks (section 8), the clock
 * filter (section 10: best of the last 8 samples) and its reachability.
 * Pure state: the poller does the sending and the receiving.
 */
import {
  Kiss, Leap, Mode, referenceIdText, shortToSeconds, STRATUM_KISS, STRATUM_UNSYNCHRONISED,
  timestamp, timestampDiff, timestampsEqual, type NtpPacket, type NtpTimestamp,
} from '../../../protocols/ntp/codec.ts';
import { ipToInt } from '../../net/ipv4.ts';
import type { Reading } from './clock.ts';

/** Frequency tolerance, s/s: how fast an unrefreshed measurement loses value (RFC 5905 PHI). */
export const PHI = 15e-6;
/** A source whose root distance exceeds this is not selectable (RFC 5905 MAXDIST). */
export const MAX_DISTANCE = 1.5;
const FILTER_SIZE = 8;
/** A source is unreachable once this many polls in a row went unanswered. */
export const UNREACHABLE_AFTER = 4;

export type SourceKind = 'upstream' | 'head';

export interface Sample {
  /** Server clock minus ours, seconds. */
  readonly offset: number;
  /** Round trip, seconds. */
  readonly delay: number;
  /** Error bound at the time of the sample, seconds. */
  readonly dispersion: number;
  /** When it was taken (our T4). */
  readonly at: Reading;
}

/** What the source said about itself in its last valid reply. */
export interface ServerState {
  readonly leap: number;
  readonly stratum: number;
  readonly referenceId: number;
  readonly rootDelay: number;
  readonly rootDispersion: number;
  readonly precision: number;
}

export type ReplyVerdict =
  | 'sample'        // a usable measurement
  | 'unsynchronised' // answered, but says it has no time to give (alive for the election)
  | 'kiss-rate' | 'kiss-deny' | 'kiss-other'
  | 'mode' | 'bogus' | 'invalid';

/** The clock filter's choice: the sample with the least distance, plus the peer statistics. */
export interface Estimate {
  readonly offset: number;
  readonly delay: number;
  /** The chosen sample's dispersion, aged to `now`. */
  readonly dispersion: number;
  readonly jitter: number;
  /** When the chosen sample was taken. */
  readonly at: Reading;
}

export class Source {
  readonly addressInt: number;
  /** 8-bit reach register, as chronyc and ntpq show it (377 octal = the last 8 polls answered). */
  reach = 0;
  /** Polls in a row without a valid reply. */
  unanswered = 0;
  polls = 0;
  /** Set by a DENY or RSTR kiss-o'-death: the server refuses us, stop polling it (RFC 5905 7.4). */
  refused = false;
  /** Doubled by each RATE kiss-o'-death. */
  backoff = 1;
  server: ServerState | undefined;
  lastReplyAt: Reading | undefined;
  private readonly samples: Sample[] = [];
  /** The transmit timestamp of the outstanding request (what the reply's origin must be), and our true send time. */
  private sentTransmit: NtpTimestamp | undefined;
  private sentAt: NtpTimestamp = timestamp();

  constructor(
    readonly kind: SourceKind,
    /** Head name, or address:port for an upstream. */
    readonly name: string,
    readonly address: string,
    readonly port: number,
  ) {
    this.addressInt = ipToInt(address);
  }

  /** Records a request leaving: `transmit` is what the packet carries, `sentAt` our clock then (T1). */
  polled(transmit: NtpTimestamp, sentAt: NtpTimestamp): void {
    if (this.polls > 0 && this.sentTransmit) this.unanswered++;
    this.polls++;
    this.reach = (this.reach << 1) & 0xff;
    this.sentTransmit = { seconds: transmit.seconds, fraction: transmit.fraction };
    this.sentAt = { seconds: sentAt.seconds, fraction: sentAt.fraction };
  }

  /**
   * Checks a reply (RFC 5905 8) and, if it is a measurement, files it.
   * `received` is our T4; `ourPrecision` our clock's log2 precision.
   */
  onReply(p: NtpPacket, received: NtpTimestamp, receivedAt: Reading, ourPrecision: number): ReplyVerdict {
    if (p.mode !== Mode.SERVER) return 'mode';
    // The origin must be our outstanding request's transmit: anything else is a duplicate, a late reply or a forgery.
    if (!this.sentTransmit || !timestampsEqual(p.originTime, this.sentTransmit)) return 'bogus';
    this.sentTransmit = undefined;
    if (p.stratum === STRATUM_KISS) {
      if (p.referenceId === Kiss.RATE) { this.backoff = Math.min(this.backoff * 2, 16); return 'kiss-rate'; }
      if (p.referenceId === Kiss.DENY || p.referenceId === Kiss.RSTR) { this.refused = true; return 'kiss-deny'; }
      return 'kiss-other';
    }
    if ((p.transmitTime.seconds === 0 && p.transmitTime.fraction === 0) || (p.receiveTime.seconds === 0 && p.receiveTime.fraction === 0)) return 'invalid';
    this.reach |= 1;
    this.unanswered = 0;
    this.lastReplyAt = receivedAt;
    this.server = {
      leap: p.leap,
      stratum: p.stratum,
      referenceId: p.referenceId,
      rootDelay: shortToSeconds(p.rootDelay),
      rootDispersion: shortToSeconds(p.rootDispersion),
      precision: p.precision,
    };
    if (p.leap === Leap.UNSYNCHRONISED || p.stratum >= STRATUM_UNSYNCHRONISED) return 'unsynchronised';
    const t1 = this.sentAt, t2 = p.receiveTime, t3 = p.transmitTime, t4 = received;
    const offset = (timestampDiff(t2, t1) + timestampDiff(t3, t4)) / 2;
    const rho = 2 ** p.precision + 2 ** ourPrecision;
    const delay = Math.max(timestampDiff(t4, t1) - timestampDiff(t3, t2), rho);
    const dispersion = rho + PHI * timestampDiff(t4, t1);
    this.samples.unshift({ offset, delay, dispersion, at: receivedAt });
    if (this.samples.length > FILTER_SIZE) this.samples.pop();
    return 'sample';
  }

  /** Answered within the last few polls. A head that is alive takes part in the election. */
  get reachable(): boolean {
    return this.server !== undefined && this.unanswered < UNREACHABLE_AFTER && !this.refused;
  }

  /** Reachable and offering time (synchronised, sane root distance). */
  get synchronised(): boolean {
    const s = this.server;
    return this.reachable && !!s && s.leap !== Leap.UNSYNCHRONISED && s.stratum > 0 && s.stratum < STRATUM_UNSYNCHRONISED && this.samples.length > 0;
  }

  /** The clock filter (RFC 5905 10): least-distance sample, filter dispersion and jitter, aged to `now`. */
  estimate(now: Reading): Estimate | undefined {
    if (!this.samples.length) return undefined;
    const aged = this.samples.map((s) => ({ s, disp: s.dispersion + PHI * (now - s.at) / 1000 }));
    aged.sort((a, b) => (a.s.delay / 2 + a.disp) - (b.s.delay / 2 + b.disp));
    const best = aged[0]!;
    // RFC 5905 pads a short history with MAXDISP, which keeps a new source unselectable
    // until 4-8 samples are in; like chrony we count the chosen sample's own
    // dispersion and let the jitter speak for the spread of the others.
    const dispersion = best.disp;
    let sq = 0;
    for (const a of aged) sq += (a.s.offset - best.s.offset) ** 2;
    const jitter = Math.max(Math.sqrt(sq / Math.max(1, aged.length - 1)), 2 ** (this.server?.precision ?? -20));
    return { offset: best.s.offset, delay: best.s.delay, dispersion, jitter, at: best.s.at };
  }

  /** Root distance (RFC 5905 11.2: delay/2 + dispersion to the primary source) at `now`. */
  distance(now: Reading): number {
    const e = this.estimate(now);
    const s = this.server;
    if (!e || !s) return Infinity;
    return (s.rootDelay + e.delay) / 2 + s.rootDispersion + e.dispersion + e.jitter;
  }

  /** The reference id text of its last reply (what it follows). */
  get referenceText(): string | undefined {
    return this.server ? referenceIdText(this.server.referenceId, this.server.stratum) : undefined;
  }
}
