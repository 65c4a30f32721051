/**
 * The NTP client side: polls every source (upstreams and the other heads)
 * from one ephemeral UDP socket, hands each reply to its Source, and tells
 * the service when anything changed. A quick start (4 polls 2 s apart, like
 * chrony's iburst) fills the filters; then each source is polled at its
 * interval, doubled for every RATE kiss-o'-death it sent.
 */
import { randomFillSync } from 'node:crypto';
import type dgram from 'node:dgram';
import { decode, emptyPacket, encode, Mode, NtpDecodeError, Offset, readTimestamp, timestamp, type NtpPacket, type NtpTimestamp } from '../../../protocols/ntp/codec.ts';
import type { Logger } from '../../log.ts';
import { lastReceiveTime, openUdp, sendStamped } from '../../net/udp.ts';
import type { SystemClock } from './clock.ts';
import type { Source, ReplyVerdict } from './source.ts';

const BURST_POLLS = 4;
const BURST_SPACING_S = 2;

export interface PollerOptions {
  readonly clock: SystemClock;
  readonly sources: readonly Source[];
  /** Seconds between polls of a source once its quick start is done. */
  readonly intervalOf: (s: Source) => number;
  /** The leap indicator to put in requests (our own state). */
  readonly leap: () => number;
  /** Called after every poll and every reply: re-evaluate. */
  readonly onEvent: (s: Source, verdict: ReplyVerdict | 'polled') => void;
  /** Address to send from (0.0.0.0: any). */
  readonly bindAddress: string;
  readonly log: Logger;
}

export class Poller {
  private socket: dgram.Socket | undefined;
  private readonly timers = new Map<Source, NodeJS.Timeout>();
  private readonly byPeer = new Map<string, Source>();
  private readonly reply: NtpPacket = emptyPacket();
  private readonly random = new Uint32Array(1);
  private readonly kernelTime = new Float64Array(2);

  constructor(private readonly opts: PollerOptions) {
    for (const s of opts.sources) this.byPeer.set(`${s.address}:${s.port}`, s);
  }

  async start(): Promise<void> {
    if (!this.opts.sources.length) return;
    const socket = await openUdp({ address: this.opts.bindAddress, port: 0, rxTimestamps: true });
    this.socket = socket;
    socket.on('message', (buf, rinfo) => {
      const t4 = this.opts.clock.read();
      const received = timestamp();
      if (!lastReceiveTime(socket, this.kernelTime) || !this.opts.clock.kernelToNtp(this.kernelTime, t4, received)) this.opts.clock.toNtp(t4, received);
      this.onReply(buf, `${rinfo.address}:${rinfo.port}`, t4, received);
    });
    socket.on('error', (e) => this.opts.log.warn({ err: e }, 'NTP client socket error'));
    for (const s of this.opts.sources) this.schedule(s, 0);
  }

  private schedule(s: Source, delayS: number): void {
    if (s.refused) return;
    const timer = setTimeout(() => this.poll(s), delayS * 1000);
    timer.unref();
    this.timers.set(s, timer);
  }

  private poll(s: Source): void {
    const { clock } = this.opts;
    const interval = this.opts.intervalOf(s);
    const req = emptyPacket();
    req.leap = this.opts.leap();
    req.version = 4;
    req.mode = Mode.CLIENT;
    req.poll = Math.round(Math.log2(interval));
    req.precision = clock.precision;
    // Like chrony, nothing but the transmit timestamp, its bits below our
    // precision random: the reply must echo it exactly, which an off-path
    // forger cannot guess. The helper stamps it just before the sendto(2).
    const bytes = encode(req);
    const noiseBits = Math.max(0, 32 + clock.precision);
    randomFillSync(this.random);
    bytes.writeUInt32BE((this.random[0]! & (2 ** noiseBits - 1)) >>> 0, Offset.TRANSMIT_TIME + 4);
    const sent = this.socket ? sendStamped(this.socket, bytes, bytes.length, s.address, s.port, Offset.TRANSMIT_TIME, noiseBits) : -1;
    readTimestamp(bytes, Offset.TRANSMIT_TIME, req.transmitTime);
    // The noise is below our precision: the transmit timestamp is also our T1.
    s.polled(req.transmitTime, req.transmitTime);
    if (sent < 0 && this.opts.log.isLevelEnabled('debug')) this.opts.log.debug({ errno: -sent, source: s.name }, 'NTP poll not sent');
    this.opts.onEvent(s, 'polled');
    const next = s.polls < BURST_POLLS ? Math.min(BURST_SPACING_S, interval) : interval * s.backoff;
    this.schedule(s, next);
  }

  private onReply(buf: Buffer, peer: string, t4: number, received: NtpTimestamp): void {
    const s = this.byPeer.get(peer);
    if (!s) return; // not a source of ours: ignore
    let p: NtpPacket;
    try {
      p = decode(buf, this.reply);
    } catch (e) {
      if (!(e instanceof NtpDecodeError)) throw e;
      this.opts.onEvent(s, 'invalid');
      return;
    }
    const verdict = s.onReply(p, received, t4, this.opts.clock.precision);
    if (verdict === 'kiss-deny') {
      clearTimeout(this.timers.get(s));
      this.timers.delete(s);
    }
    this.opts.onEvent(s, verdict);
  }

  async stop(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((r) => socket.close(() => r()));
  }
}
