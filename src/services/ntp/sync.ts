/**
 * The head's synchronisation state, honest about what it measured: from the
 * sources (upstreams and the other heads) it selects one to follow, or runs
 * the head election, and derives what every reply carries — leap indicator,
 * stratum, reference id and time, root delay and root dispersion.
 *
 * bootherd serves the system clock and does not steer it; the offset between
 * the system clock and the followed source therefore counts in the root
 * dispersion, so clients see how far the head may be off (and reject it once
 * that exceeds their limit) when nothing disciplines its clock.
 */
import { Leap, referenceIdText, secondsToShort, STRATUM_UNSYNCHRONISED, timestamp, type NtpTimestamp } from '../../../protocols/ntp/codec.ts';
import type { Reading, SystemClock } from './clock.ts';
import { elect } from './election.ts';
import { choosePeer, truechimers, type Candidate } from './selection.ts';
import { PHI, type Source } from './source.ts';

/** The reference id chrony and ntpd use for their local clock: 127.127.1.1. */
export const LOCAL_REFERENCE_ID = 0x7f7f0101;
/** The stratum an elected head serves when `ntp.localStratum` does not say (chrony's `local` default). */
export const DEFAULT_LOCAL_STRATUM = 10;
/** Polls after which a source that never answered no longer holds up the start. */
const SETTLE_POLLS = 3;

/** What every reply says about this server. Read per packet; changed only by `update`. */
export interface SystemState {
  /** False: leap 3, stratum 16, nothing to offer. */
  synchronised: boolean;
  leap: number;
  stratum: number;
  referenceId: number;
  referenceTime: NtpTimestamp;
  /** NTP short format, raw. */
  rootDelay: number;
  /** Seconds, as of `since`; a reply adds PHI × the time elapsed. */
  rootDispersion: number;
  since: Reading;
}

/** Root dispersion as a reply at `now` carries it: it grows at PHI since the last update. */
export function rootDispersionAt(st: SystemState, now: Reading): number {
  return st.synchronised ? st.rootDispersion + PHI * Math.max(0, now - st.since) / 1000 : 0;
}

export type SyncMode =
  | 'unsynchronised'
  | 'synchronised' // following an upstream, or a head that follows one
  | 'leader'       // the elected head, serving its own clock
  | 'follower'     // following the elected head
  | 'local';       // a single head serving its own clock (ntp.localStratum)

export type LeapText = 'none' | 'add-second' | 'delete-second' | 'unsynchronised';
const LEAP_TEXT: readonly LeapText[] = ['none', 'add-second', 'delete-second', 'unsynchronised'];

export interface SourceStatus {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly reachable: boolean;
  /** The reach register in octal, as chronyc and ntpq print it (377 = the last 8 polls answered). */
  readonly reach: string;
  readonly stratum?: number;
  readonly referenceId?: string;
  readonly leap?: LeapText;
  /** Its clock minus ours, seconds. */
  readonly offset?: number;
  readonly delay?: number;
  readonly jitter?: number;
  readonly rootDistance?: number;
  /** Seconds since its last valid reply. */
  readonly lastReply?: number;
  /** The source this head follows. */
  readonly selected: boolean;
  /** It answered DENY or RSTR: no longer polled. */
  readonly refused: boolean;
}

export interface HeadStatus extends SourceStatus {
  readonly self: boolean;
  readonly leader: boolean;
}

export interface NtpStatus {
  readonly mode: SyncMode;
  readonly synchronised: boolean;
  readonly stratum: number;
  readonly leap: LeapText;
  readonly referenceId: string;
  /** Name of the followed source (head name, or address:port of an upstream). */
  readonly source?: string;
  /** System clock minus the followed source, seconds (negated source offset). */
  readonly offset?: number;
  readonly rootDelay: number;
  readonly rootDispersion: number;
  /** log2 seconds. */
  readonly precision: number;
  /** The elected head, when the heads keep time among themselves. */
  readonly leader?: string;
  readonly upstreams: readonly SourceStatus[];
  /** Every head in `heads:` order, this one included. */
  readonly heads: readonly HeadStatus[];
}

export interface HeadEntry {
  readonly name: string;
  readonly address: string;
  /** Undefined for this head; the polled source for the others. */
  readonly source: Source | undefined;
}

export interface SyncOptions {
  readonly clock: SystemClock;
  readonly upstreams: readonly Source[];
  /** Every head in `heads:` order, this one included (empty for a single head). */
  readonly heads: readonly HeadEntry[];
  /** This head's address as the others poll it: a source whose reference id is this follows us (a loop). */
  readonly selfAddress: number;
  readonly localStratum: number | undefined;
  /** The head etcd's election names, asked at every selection (several heads on etcd). */
  readonly electedHead?: () => string | undefined;
}

export class Synchronisation {
  readonly state: SystemState = {
    synchronised: false, leap: Leap.UNSYNCHRONISED, stratum: STRATUM_UNSYNCHRONISED, referenceId: 0, referenceTime: timestamp(), rootDelay: 0, rootDispersion: 0, since: 0,
  };
  mode: SyncMode = 'unsynchronised';
  peer: Source | undefined;
  leader: string | undefined;
  private peerOffset: number | undefined;
  private readonly localStratum: number;
  private lastKey = '';

  constructor(private readonly opts: SyncOptions) {
    this.localStratum = opts.localStratum ?? DEFAULT_LOCAL_STRATUM;
  }

  get sources(): Source[] {
    const out = [...this.opts.upstreams];
    for (const h of this.opts.heads) if (h.source) out.push(h.source);
    return out;
  }

  private get settled(): boolean {
    return this.sources.every((s) => s.server !== undefined || s.polls >= SETTLE_POLLS || s.refused);
  }

  /** A source that follows this head (its reference id is our address) must not be followed back. */
  private loops(s: Source): boolean {
    return s.server?.referenceId === this.opts.selfAddress;
  }

  private candidate(s: Source, now: Reading): Candidate<Source> | undefined {
    if (!s.synchronised || this.loops(s)) return undefined;
    const e = s.estimate(now)!;
    return { source: s, offset: e.offset, distance: s.distance(now), stratum: s.server!.stratum };
  }

  /**
   * Re-evaluates after a reply, a poll or a tick. Returns true when what the
   * head serves changed in a way worth a log line (mode, source, leader,
   * stratum or leap).
   */
  update(now: Reading): boolean {
    const realTime: Candidate<Source>[] = [];
    for (const s of this.opts.upstreams) { const c = this.candidate(s, now); if (c) realTime.push(c); }
    for (const h of this.opts.heads) {
      // A head below the local stratum follows real time; at or above it, it follows an elected head.
      const c = h.source && this.candidate(h.source, now);
      if (c && c.stratum < this.localStratum) realTime.push(c);
    }
    const chosen = choosePeer(truechimers(realTime), this.peer);
    const election = elect({
      heads: this.opts.heads.map((h) => ({ name: h.name, self: !h.source, alive: !h.source || h.source.reachable })),
      realTime: chosen !== undefined,
      localStratumSet: this.opts.localStratum !== undefined,
      settled: this.settled,
      named: this.opts.electedHead?.(),
    });
    this.leader = election.leader;
    if (chosen) {
      this.follow(chosen.source, 'synchronised', now);
    } else if (election.localReference) {
      this.serveLocal(this.opts.heads.length > 1 ? 'leader' : 'local', now);
    } else {
      const leader = this.opts.heads.find((h) => h.name === election.leader)?.source;
      if (leader && this.candidate(leader, now)) this.follow(leader, 'follower', now);
      else this.unsynchronise(now);
    }
    const key = `${this.mode}|${this.peer?.name}|${this.leader}|${this.state.stratum}|${this.state.leap}`;
    const changed = key !== this.lastKey;
    this.lastKey = key;
    return changed;
  }

  private follow(s: Source, mode: SyncMode, now: Reading): void {
    const e = s.estimate(now)!;
    const server = s.server!;
    if (server.stratum + 1 >= STRATUM_UNSYNCHRONISED) { this.unsynchronise(now); return; }
    const st = this.state;
    st.synchronised = true;
    st.leap = server.leap;
    st.stratum = server.stratum + 1;
    st.referenceId = s.addressInt;
    this.opts.clock.toNtp(e.at, st.referenceTime);
    st.rootDelay = secondsToShort(server.rootDelay + e.delay);
    // |offset|: we serve the system clock, which is that far from the source.
    st.rootDispersion = server.rootDispersion + e.dispersion + e.jitter + Math.abs(e.offset) + this.opts.clock.anchorError;
    st.since = now;
    this.mode = mode;
    this.peer = s;
    this.peerOffset = e.offset;
  }

  private serveLocal(mode: SyncMode, now: Reading): void {
    const st = this.state;
    st.synchronised = true;
    st.leap = Leap.NONE;
    st.stratum = this.localStratum;
    st.referenceId = LOCAL_REFERENCE_ID;
    this.opts.clock.toNtp(now, st.referenceTime);
    st.rootDelay = 0;
    st.rootDispersion = this.opts.clock.anchorError + 2 ** this.opts.clock.precision;
    st.since = now;
    this.mode = mode;
    this.peer = undefined;
    this.peerOffset = undefined;
  }

  private unsynchronise(now: Reading): void {
    const st = this.state;
    st.synchronised = false;
    st.since = now;
    st.leap = Leap.UNSYNCHRONISED;
    st.stratum = STRATUM_UNSYNCHRONISED;
    st.referenceId = 0;
    st.rootDelay = 0;
    st.rootDispersion = 0;
    this.mode = 'unsynchronised';
    this.peer = undefined;
    this.peerOffset = undefined;
  }

  rootDispersionAt(now: Reading): number {
    return rootDispersionAt(this.state, now);
  }

  status(now: Reading): NtpStatus {
    const st = this.state;
    const upstreams = this.opts.upstreams.map((s) => this.sourceStatus(s, now));
    const heads = this.opts.heads.map((h): HeadStatus => {
      if (h.source) return { ...this.sourceStatus(h.source, now), self: false, leader: h.name === this.leader };
      return {
        name: h.name, address: h.address, port: 0, reachable: true, reach: '377', stratum: st.stratum,
        referenceId: referenceIdText(st.referenceId, st.stratum), leap: LEAP_TEXT[st.leap]!, offset: 0,
        selected: false, refused: false, self: true, leader: h.name === this.leader,
      };
    });
    return {
      mode: this.mode,
      synchronised: this.mode !== 'unsynchronised',
      stratum: st.stratum,
      leap: LEAP_TEXT[st.leap]!,
      referenceId: referenceIdText(st.referenceId, st.stratum),
      source: this.peer?.name,
      offset: this.peerOffset === undefined ? undefined : -this.peerOffset,
      rootDelay: st.rootDelay / 65536,
      rootDispersion: this.rootDispersionAt(now),
      precision: this.opts.clock.precision,
      leader: this.leader,
      upstreams,
      heads,
    };
  }

  private sourceStatus(s: Source, now: Reading): SourceStatus {
    const e = s.estimate(now);
    return {
      name: s.name,
      address: s.address,
      port: s.port,
      reachable: s.reachable,
      reach: s.reach.toString(8),
      stratum: s.server?.stratum,
      referenceId: s.referenceText,
      leap: s.server ? LEAP_TEXT[s.server.leap] : undefined,
      offset: e?.offset,
      delay: e?.delay,
      jitter: e?.jitter,
      rootDistance: e ? s.distance(now) : undefined,
      lastReply: s.lastReplyAt === undefined ? undefined : (now - s.lastReplyAt) / 1000,
      selected: s === this.peer,
      refused: s.refused,
    };
  }
}
