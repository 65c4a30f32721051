/**
 * The NTP service: a server socket at the edge, a chain of small handlers in
 * the middle (accept client requests, rate-limit, serve the time), and the
 * client side (Poller) that keeps the synchronisation state honest.
 *
 * Timestamps sit as close to the wire as Node allows: the receive timestamp
 * is the kernel's (SIOCGSTAMPNS), read first thing in the 'message'
 * listener, and the transmit timestamp is written by the native helper
 * immediately before its sendto(2) — the two places chronyd takes them. The reply is written
 * over the request's own buffer, which Node hands to us alone, so answering
 * allocates nothing.
 */
import type dgram from 'node:dgram';
import { emptyPacket, encodeInto, HEADER_LENGTH, Offset, timestamp } from '../../../protocols/ntp/codec.ts';
import type { Config } from '../../config/load.ts';
import type { Logger } from '../../log.ts';
import type { Metrics } from '../../metrics.ts';
import { ipToInt } from '../../net/ipv4.ts';
import { lastReceiveTime, openUdp, sendStamped } from '../../net/udp.ts';
import { SystemClock } from './clock.ts';
import type { DropReason, Handler, NtpContext } from './context.ts';
import { rateLimit } from './handlers/rate-limit.ts';
import { acceptRequests } from './handlers/request.ts';
import { serveTime } from './handlers/serve.ts';
import { Poller } from './poller.ts';
import { ClientRateLimiter } from './rate-limit.ts';
import { Source, type ReplyVerdict } from './source.ts';
import { Synchronisation, type HeadEntry, type NtpStatus } from './sync.ts';

export interface NtpServiceDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** Beyond this, the system clock is evidently not following the source: say so (RFC 5905's step threshold). */
const LARGE_OFFSET = 0.128;
const WARM_UP_REQUESTS = 3000;

type Series = { value: number };

export class NtpService {
  readonly clock: SystemClock;
  readonly sync: Synchronisation;
  private readonly poller: Poller;
  private readonly chain: Handler[];
  private readonly limiter: Handler | undefined;
  private readonly sockets: dgram.Socket[] = [];
  private readonly ctx: NtpContext;
  private readonly kernelTime = new Float64Array(2);
  private readonly log: Logger;
  private housekeeping: NodeJS.Timeout | undefined;
  private readonly wasReachable = new Map<Source, boolean>();
  private offsetWarned = false;
  private readonly received: Series;
  private readonly answered: Series;
  private readonly kissed: Series;
  private readonly droppedFamily;
  private readonly dropped = new Map<DropReason, Series>();

  constructor(private readonly deps: NtpServiceDeps) {
    const { config, metrics } = deps;
    const cfg = config.ntp;
    this.log = deps.log.child({ svc: 'ntp' });
    this.clock = new SystemClock();
    const upstreams = cfg.upstreams.map((u) => new Source('upstream', `${u.address}:${u.port}`, u.address, u.port));
    const heads: HeadEntry[] = config.heads.map((h) => ({
      name: h.name,
      address: h.address,
      source: h.name === config.head.name ? undefined : new Source('head', h.name, h.address, cfg.port),
    }));
    this.sync = new Synchronisation({
      clock: this.clock,
      upstreams,
      heads,
      selfAddress: ipToInt(config.head.address),
      localStratum: cfg.localStratum,
    });
    this.poller = new Poller({
      clock: this.clock,
      sources: this.sync.sources,
      intervalOf: (s) => (s.kind === 'head' ? cfg.headPollInterval : cfg.pollInterval),
      leap: () => this.sync.state.leap,
      onEvent: (s, verdict) => this.onSourceEvent(s, verdict),
      bindAddress: cfg.address,
      log: this.log,
    });
    this.limiter = cfg.rateLimit.enabled ? rateLimit(new ClientRateLimiter(cfg.rateLimit)) : undefined;
    this.chain = [acceptRequests(), ...(this.limiter ? [this.limiter] : []), serveTime(this.sync, this.clock)];
    this.ctx = { rx: 0, received: timestamp(), client: '', clientPort: 0, bytes: Buffer.alloc(0), req: emptyPacket(), res: emptyPacket(), reply: undefined, drop: undefined };

    this.received = metrics.counter('bootherd_ntp_received_total', 'NTP datagrams received on the server port').with();
    const replies = metrics.counter('bootherd_ntp_replies_total', 'NTP replies sent, by kind (time, kiss-rate)');
    this.answered = replies.with({ kind: 'time' });
    this.kissed = replies.with({ kind: 'kiss-rate' });
    this.droppedFamily = metrics.counter('bootherd_ntp_dropped_total', 'NTP datagrams dropped unanswered, by reason');
    const st = this.sync.state;
    metrics.gaugeFn('bootherd_ntp_stratum', 'Stratum this head serves (16: unsynchronised)', () => st.stratum);
    metrics.gaugeFn('bootherd_ntp_synchronised', '1 when this head serves time (from a source, as elected leader, or as local reference)', () => (this.sync.mode === 'unsynchronised' ? 0 : 1));
    metrics.gaugeFn('bootherd_ntp_root_delay_seconds', 'Root delay this head serves', () => st.rootDelay / 65536);
    metrics.gaugeFn('bootherd_ntp_root_dispersion_seconds', 'Root dispersion this head serves', () => this.sync.rootDispersionAt(this.clock.read()));
    for (const s of this.sync.sources) {
      metrics.gaugeFn('bootherd_ntp_source_reachable', 'Whether a time source (upstream or head) answered one of its last 4 polls', () => (s.reachable ? 1 : 0), { source: s.name, kind: s.kind });
      metrics.gaugeFn('bootherd_ntp_source_offset_seconds', 'A time source\'s clock minus this head\'s (NaN before the first sample)', () => s.estimate(this.clock.read())?.offset ?? NaN, { source: s.name, kind: s.kind });
    }
  }

  async start(): Promise<void> {
    const cfg = this.deps.config.ntp;
    this.sync.update(this.clock.read());
    const socket = await openUdp({ address: cfg.address, port: cfg.port, recvBufferSize: 4 << 20, rxTimestamps: true });
    this.sockets.push(socket);
    socket.on('message', (bytes, rinfo) => {
      const rx = this.clock.read();
      // The kernel stamped the datagram when it arrived; the event loop came later.
      const kernel = lastReceiveTime(socket, this.kernelTime);
      if (!kernel || !this.clock.kernelToNtp(this.kernelTime, rx, this.ctx.received)) this.clock.toNtp(rx, this.ctx.received);
      this.onRequest(socket, bytes, rinfo.address, rinfo.port, rx);
    });
    socket.on('error', (e) => this.log.warn({ err: e }, 'NTP socket error'));
    await this.warmUp(socket);
    await this.poller.start();
    this.housekeeping = setInterval(() => this.tick(), 1000);
    this.housekeeping.unref();
    this.log.info({
      address: cfg.address, port: cfg.port, precision: this.clock.precision,
      upstreams: cfg.upstreams.map((u) => `${u.address}:${u.port}`),
      heads: this.deps.config.heads.map((h) => h.name),
      localStratum: cfg.localStratum, rateLimit: cfg.rateLimit.enabled ? cfg.rateLimit : false,
    }, 'NTP listening');
    this.logState();
  }

  /** One datagram: the handler chain decides, then the reply goes out over the request's bytes. */
  private onRequest(socket: dgram.Socket, bytes: Buffer, address: string, port: number, rx: number): void {
    this.received.value++;
    let ctx: NtpContext;
    try {
      ctx = this.answer(socket, bytes, address, port, rx, this.chain);
    } catch (e) {
      // A handler bug must cost one datagram, never the listener.
      this.countDrop('internal');
      this.log.error({ err: e, client: address }, 'NTP request failed');
      return;
    }
    if (ctx.reply === 'time') this.answered.value++;
    else if (ctx.reply === 'kiss-rate') this.kissed.value++;
    else {
      this.countDrop(ctx.drop ?? 'mode');
      if (this.log.isLevelEnabled('debug')) this.log.debug({ client: address, port, reason: ctx.drop, bytes: bytes.length }, 'NTP datagram dropped');
    }
  }

  private answer(socket: dgram.Socket, bytes: Buffer, address: string, port: number, rx: number, chain: readonly Handler[]): NtpContext {
    const ctx = this.ctx;
    ctx.rx = rx;
    ctx.client = address;
    ctx.clientPort = port;
    ctx.bytes = bytes;
    ctx.reply = undefined;
    ctx.drop = undefined;
    for (const h of chain) if (!h(ctx)) break;
    if (ctx.reply === undefined) return ctx;
    encodeInto(ctx.res, bytes, 0);
    if (ctx.reply === 'kiss-rate') {
      socket.send(bytes, 0, HEADER_LENGTH, port, address);
    } else if (sendStamped(socket, bytes, HEADER_LENGTH, address, port, Offset.TRANSMIT_TIME) < 0) {
      // The socket's send buffer is full (a flood): dropped, not queued without bound.
      ctx.reply = undefined;
      ctx.drop = 'send-failed';
    }
    return ctx;
  }

  /**
   * Runs the answer path a few thousand times on loopback before serving.
   * V8 first interprets new code, and a cold path between the transmit
   * timestamp and the wire costs a client hundreds of microseconds of offset
   * (measured); warm, it is tens. Replies go to a throwaway socket on
   * 127.0.0.1; the rate limiter and the counters are left out.
   */
  private async warmUp(socket: dgram.Socket): Promise<void> {
    const sink = await openUdp({ address: '127.0.0.1', port: 0 });
    const port = sink.address().port;
    let received = 0;
    const all = new Promise<void>((resolve) => {
      sink.on('message', () => { if (++received === WARM_UP_REQUESTS) resolve(); });
    });
    const chain = this.chain.filter((h) => h !== this.limiter);
    const request = Buffer.alloc(HEADER_LENGTH);
    request[0] = 0x23; // NTPv4, client
    for (let i = 0; i < WARM_UP_REQUESTS; i++) {
      const rx = this.clock.read();
      this.clock.toNtp(rx, this.ctx.received);
      request.writeUInt32BE(i, Offset.TRANSMIT_TIME + 4);
      this.answer(socket, Buffer.from(request), '127.0.0.1', port, rx, chain);
    }
    await Promise.race([all, new Promise((r) => setTimeout(r, 500))]);
    await new Promise<void>((r) => sink.close(() => r()));
  }

  private countDrop(reason: DropReason): void {
    let s = this.dropped.get(reason);
    if (!s) { s = this.droppedFamily.with({ reason }); this.dropped.set(reason, s); }
    s.value++;
  }

  private onSourceEvent(s: Source, verdict: ReplyVerdict | 'polled'): void {
    const now = this.clock.read();
    if (verdict !== 'polled' && this.log.isLevelEnabled('debug')) {
      const e = s.estimate(now);
      this.log.debug({ source: s.name, verdict, stratum: s.server?.stratum, offset: e?.offset, delay: e?.delay }, 'NTP reply');
    }
    if (verdict === 'kiss-deny') this.log.warn({ source: s.name }, 'NTP source refuses us (DENY/RSTR kiss-o\'-death); no longer polled');
    if (verdict === 'kiss-rate') this.log.warn({ source: s.name, backoff: s.backoff }, 'NTP source asks us to poll less often (RATE kiss-o\'-death)');
    const reachable = s.reachable;
    if (this.wasReachable.get(s) !== reachable && (reachable || this.wasReachable.has(s))) {
      const e = s.estimate(now);
      this.log.info({ source: s.name, kind: s.kind, address: `${s.address}:${s.port}`, stratum: s.server?.stratum, offset: e?.offset, delay: e?.delay }, reachable ? 'NTP source reachable' : 'NTP source unreachable');
    }
    this.wasReachable.set(s, reachable);
    if (this.sync.update(now)) this.logState();
  }

  private tick(): void {
    const step = this.clock.checkStep();
    if (step !== undefined) this.log.warn({ stepMs: step }, 'system clock stepped; re-anchored the served time');
    if (this.sync.update(this.clock.read())) this.logState();
    this.checkOffset();
  }

  private checkOffset(): void {
    const offset = this.sync.status(this.clock.read()).offset;
    const large = offset !== undefined && Math.abs(offset) > LARGE_OFFSET;
    if (large && !this.offsetWarned) {
      this.log.warn({ offset, source: this.sync.peer?.name }, 'the system clock is far from the time source; bootherd serves the system clock without steering it: run chronyd client-only beside it (docs/ntp.md)');
    }
    this.offsetWarned = large;
  }

  /** The state change, with every head's view: what the API's status shows, in the log. */
  private logState(): void {
    const st = this.status();
    this.log.info({
      mode: st.mode, stratum: st.stratum, leap: st.leap, referenceId: st.referenceId,
      source: st.source, leader: st.leader, offset: st.offset, rootDelay: st.rootDelay, rootDispersion: st.rootDispersion,
      upstreams: st.upstreams.map((u) => ({ name: u.name, reachable: u.reachable, stratum: u.stratum, offset: u.offset })),
      heads: st.heads.map((h) => ({ name: h.name, self: h.self, reachable: h.reachable, stratum: h.stratum, offset: h.offset, leader: h.leader })),
    }, 'NTP state changed');
  }

  /** Synchronisation, election and every source, for the API. */
  status(): NtpStatus {
    return this.sync.status(this.clock.read());
  }

  async stop(): Promise<void> {
    if (this.housekeeping) clearInterval(this.housekeeping);
    this.housekeeping = undefined;
    await this.poller.stop();
    await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.sockets.length = 0;
  }
}
