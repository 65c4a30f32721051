/**
 * The NTP service: the server side (a Responder on UDP 123, plus one per
 * extra worker thread), and the client side (Poller) that keeps the
 * synchronisation state honest — what upstreams and the other heads say,
 * which source this head follows, and the head election.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../log.ts';
import { ipToInt } from '../../net/ipv4.ts';
import type { UdpBatchSocket } from '../../net/udp-batch.ts';
import type { Service, ServiceDeps } from '../service.ts';
import { SystemClock } from './clock.ts';
import type { DropReason, ReplyKind } from './context.ts';
import { Poller } from './poller.ts';
import { openServerSocket, Responder } from './responder.ts';
import { Source, type ReplyVerdict } from './source.ts';
import { Synchronisation, type HeadEntry, type NtpStatus } from './sync.ts';
import type { FromWorker, ToWorker, WorkerData } from './worker.ts';

/** NTP reads neither the cluster model nor the store. */
export type NtpServiceDeps = Pick<ServiceDeps, 'config' | 'log' | 'metrics'> & {
  /** The head etcd's election names as the time source without upstream (several heads on etcd). */
  readonly electedHead?: () => string | undefined;
};

/** Beyond this, the system clock is evidently not following the source: say so (RFC 5905's step threshold). */
const LARGE_OFFSET = 0.128;
const WORKER_START_TIMEOUT_MS = 20_000;

type Series = { value: number };

export class NtpService implements Service {
  readonly clock: SystemClock;
  readonly sync: Synchronisation;
  private readonly poller: Poller;
  private readonly responder: Responder;
  private readonly sockets: UdpBatchSocket[] = [];
  private readonly workers: Worker[] = [];
  private readonly log: Logger;
  private housekeeping: NodeJS.Timeout | undefined;
  private readonly wasReachable = new Map<Source, boolean>();
  private offsetWarned = false;
  private readonly receivedSeries: Series;
  private readonly repliedSeries: Record<ReplyKind, Series>;
  private readonly dropSeries: (reason: DropReason) => Series;

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
      electedHead: deps.electedHead,
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

    this.receivedSeries = metrics.counter('bootherd_ntp_received_total', 'NTP datagrams received on the server port').with();
    const replies = metrics.counter('bootherd_ntp_replies_total', 'NTP replies sent, by kind (time, kiss-rate)');
    this.repliedSeries = { 'time': replies.with({ kind: 'time' }), 'kiss-rate': replies.with({ kind: 'kiss-rate' }) };
    this.dropSeries = metrics.counter('bootherd_ntp_dropped_total', 'NTP datagrams dropped unanswered, by reason').by('reason');
    this.responder = new Responder({
      clock: this.clock,
      served: this.sync.state,
      rateLimit: cfg.rateLimit.enabled ? cfg.rateLimit : undefined,
      log: this.log,
      tally: {
        received: () => { this.receivedSeries.value++; },
        replied: (kind) => { this.repliedSeries[kind].value++; },
        dropped: (reason) => { this.dropSeries(reason).value++; },
      },
    });

    const st = this.sync.state;
    metrics.gaugeFn('bootherd_ntp_stratum', 'Stratum this head serves (16: unsynchronised)', () => st.stratum);
    metrics.gaugeFn('bootherd_ntp_synchronised', '1 when this head serves time (from a source, as elected leader, or as local reference)', () => (st.synchronised ? 1 : 0));
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
    let socket: UdpBatchSocket;
    try {
      socket = openServerSocket(cfg.address, cfg.port, cfg.workers > 1);
    } catch (e) {
      const m = (e as Error).message;
      throw new Error(/EADDRINUSE|in use/i.test(m)
        ? `${m}; is chronyd or ntpd serving NTP on this host? Run it client-only ("port 0" in chrony.conf, see docs/ntp.md) or set ntp.enabled: false`
        : m);
    }
    this.sockets.push(socket);
    await this.responder.attach(socket);
    for (let i = 1; i < cfg.workers; i++) this.workers.push(await this.startWorker(i));
    this.publish();
    await this.poller.start();
    this.housekeeping = setInterval(() => this.tick(), 1000);
    this.housekeeping.unref();
    this.log.info({
      address: cfg.address, port: cfg.port, precision: this.clock.precision, workers: cfg.workers,
      upstreams: cfg.upstreams.map((u) => `${u.address}:${u.port}`),
      heads: this.deps.config.heads.map((h) => h.name),
      localStratum: cfg.localStratum, rateLimit: cfg.rateLimit.enabled ? cfg.rateLimit : false,
    }, 'NTP listening');
    this.logState();
  }

  /** An answering thread with its own SO_REUSEPORT socket; resolves once it serves. */
  private startWorker(index: number): Promise<Worker> {
    const cfg = this.deps.config.ntp;
    const data: WorkerData = {
      index,
      address: cfg.address,
      port: cfg.port,
      rateLimit: cfg.rateLimit.enabled ? cfg.rateLimit : undefined,
      logLevel: this.deps.config.log.level,
    };
    // The thread runs TypeScript like the main one: register tsx's loader, then import the entry.
    const tsx = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./worker.ts', import.meta.url).href;
    const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
    const worker = new Worker(code, { eval: true, workerData: data });
    return new Promise<Worker>((resolve, reject) => {
      const timer = setTimeout(() => { void worker.terminate(); reject(new Error(`NTP worker ${index} did not start within ${WORKER_START_TIMEOUT_MS / 1000} s`)); }, WORKER_START_TIMEOUT_MS);
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') { clearTimeout(timer); resolve(worker); } else if (m.type === 'failed') { clearTimeout(timer); reject(new Error(`NTP worker ${index}: ${m.message}`)); } else if (m.type === 'tally') {
          this.receivedSeries.value += m.received;
          for (const [kind, n] of Object.entries(m.replied)) this.repliedSeries[kind as ReplyKind].value += n;
          for (const [reason, n] of Object.entries(m.dropped)) this.dropSeries(reason as DropReason).value += n;
        }
      });
      worker.on('error', (e) => { clearTimeout(timer); this.log.error({ err: e, worker: index }, 'NTP worker failed'); reject(e); });
    });
  }

  /** Hands the state replies carry to the worker threads. */
  private publish(): void {
    if (!this.workers.length) return;
    const st = this.sync.state;
    const message: ToWorker = { type: 'state', state: st, sinceAbsolute: performance.timeOrigin + st.since };
    for (const w of this.workers) w.postMessage(message);
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
    this.reevaluate(now);
  }

  private reevaluate(now: number): void {
    const changed = this.sync.update(now);
    this.publish();
    if (changed) this.logState();
  }

  private tick(): void {
    const step = this.clock.checkStep();
    if (step !== undefined) this.log.warn({ stepMs: step }, 'system clock stepped; re-anchored the served time');
    this.reevaluate(this.clock.read());
    const offset = this.status().offset;
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
    await Promise.all(this.workers.map((w) => new Promise<void>((resolve) => {
      const timer = setTimeout(() => { void w.terminate().then(() => resolve()); }, 2000);
      w.once('exit', () => { clearTimeout(timer); resolve(); });
      w.postMessage({ type: 'stop' } satisfies ToWorker);
    })));
    this.workers.length = 0;
    await Promise.all(this.sockets.map((s) => s.close()));
    this.sockets.length = 0;
  }
}
