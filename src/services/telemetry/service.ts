/**
 * Telemetry relay: every batch the ingest endpoints accept is queued on disk
 * for this head's InfluxDB and, unless it came relayed from another head,
 * for every other head of `heads:` (their ingest endpoints). Each target has
 * its own queue and sender, so a target that is down or slow holds back only
 * its own deliveries. The write-only ingest token is <state>/ingest-token;
 * heads relay to each other with it, so every head needs the same file.
 */
import path from 'node:path';
import type { Precision } from '../../../protocols/influx/line-protocol.ts';
import type { Logger } from '../../log.ts';
import type { Series } from '../../metrics.ts';
import { ensureToken } from '../http/auth.ts';
import type { Service, ServiceDeps } from '../service.ts';
import { DiskQueue, encodeRecord } from './queue.ts';
import { metricsAsLineProtocol } from './self-metrics.ts';
import { POST_BYTES, Target, type TargetSpec } from './target.ts';

export const INGEST_TOKEN_FILE = 'ingest-token';
/** Marks a batch one head relays to another: the receiver writes it to its own InfluxDB only. */
export const RELAYED_HEADER = 'x-bootherd-relayed-from';

export interface AcceptResult {
  /** Targets whose queue was full: the batch was not queued for them. */
  readonly droppedFor: readonly string[];
}

export class TelemetryService implements Service {
  readonly ingestToken: string;
  private targets: Target[] = [];
  private readonly log: Logger;
  private readonly accepted: Series;
  private readonly acceptedBatches: Series;
  private readonly droppedFamily;
  private readonly headAddresses: ReadonlySet<string>;
  private started = false;
  private selfTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: ServiceDeps) {
    const { config, metrics } = deps;
    this.log = deps.log.child({ svc: 'telemetry' });
    this.ingestToken = ensureToken(config.stateDir, INGEST_TOKEN_FILE);
    this.accepted = metrics.counter('bootherd_telemetry_accepted_points_total', 'Points accepted by the ingest endpoints').with();
    this.acceptedBatches = metrics.counter('bootherd_telemetry_accepted_batches_total', 'Batches accepted by the ingest endpoints').with();
    this.droppedFamily = metrics.counter('bootherd_telemetry_dropped_points_total', 'Accepted points not queued for a target, by reason (queue-full)');
    this.headAddresses = new Set(config.heads.filter((h) => !this.isSelf(h)).map((h) => h.address));
    const delivered = metrics.counter('bootherd_telemetry_delivered_points_total', 'Points a target took (204), by target');
    const errors = metrics.counter('bootherd_telemetry_delivery_errors_total', 'Failed delivery attempts (retried), by target');
    const rejected = metrics.counter('bootherd_telemetry_rejected_points_total', 'Points a target refused as malformed (400) and that were dropped, by target');
    const maxBackoffMs = config.telemetry.maxBackoff * 1000;
    for (const spec of this.targetSpecs()) {
      const queue = new DiskQueue(path.join(config.stateDir, 'telemetry', spec.name), config.telemetry.queueBytes);
      const labels = { target: spec.name };
      // Another head takes a POST up to its telemetry.bodyLimit (the same cluster file): stay under it.
      const postBytes = spec.name === 'influxdb' ? POST_BYTES : Math.min(POST_BYTES, config.telemetry.bodyLimit);
      const target = new Target(spec, queue, { delivered: delivered.with(labels), errors: errors.with(labels), rejected: rejected.with(labels) }, maxBackoffMs, this.log, postBytes);
      this.targets.push(target);
      metrics.gaugeFn('bootherd_telemetry_queue_batches', 'Batches waiting for a target', () => queue.depthBatches, labels);
      metrics.gaugeFn('bootherd_telemetry_queue_points', 'Points waiting for a target', () => queue.depthPoints, labels);
      metrics.gaugeFn('bootherd_telemetry_queue_bytes', 'Bytes of a target\'s queue on disk', () => queue.depthBytes, labels);
      metrics.gaugeFn('bootherd_telemetry_oldest_point_age_seconds', 'Seconds since the oldest batch waiting for a target was accepted (0: none waiting)',
        () => { const t = queue.oldestAcceptedAt; return t === undefined ? 0 : (Date.now() - t) / 1000; }, labels);
    }
  }

  private isSelf(h: { name: string; address: string }): boolean {
    return h.name === this.deps.config.head.name || h.address === this.deps.config.head.address;
  }

  private targetSpecs(): TargetSpec[] {
    const { config } = this.deps;
    const t = config.telemetry;
    const specs: TargetSpec[] = [{ name: 'influxdb', url: t.influxdb, database: t.database, createDatabase: true }];
    const scheme = config.http.tls ? 'https' : 'http';
    for (const h of config.heads) {
      if (this.isSelf(h)) continue;
      specs.push({
        name: `head-${h.name}`,
        url: `${scheme}://${h.address}:${config.http.port}`,
        database: t.database,
        authorization: `Token ${this.ingestToken}`,
        headers: { [RELAYED_HEADER]: config.head.name },
        createDatabase: false,
      });
    }
    return specs;
  }

  /** Whether a request's client may mark its batch relayed: only the other heads may. */
  isHeadAddress(ip: string): boolean {
    return this.headAddresses.has(ip);
  }

  async start(): Promise<void> {
    for (const t of this.targets) {
      t.queue.open();
      if (t.queue.depthBatches) this.log.info({ target: t.spec.name, batches: t.queue.depthBatches, points: t.queue.depthPoints }, 'telemetry: delivering what was queued before the restart');
      t.start();
    }
    this.started = true;
    const every = this.deps.config.telemetry.selfInterval;
    if (every > 0) {
      this.selfTimer = setInterval(() => void this.writeSelfMetrics(), every * 1000);
      this.selfTimer.unref();
    }
    this.log.info({ targets: this.targets.map((t) => `${t.spec.name}=${t.spec.url}`) }, 'telemetry relay running');
  }

  /** bootherd's own metrics, relayed like a node's batch: every head's InfluxDB gets every head's. */
  private async writeSelfMetrics(): Promise<void> {
    if (!this.started) return;
    // A head without an InfluxDB (telemetry left at its defaults) would fill telemetry.queueBytes with its own metrics: skip while the own InfluxDB fails.
    if (this.targets[0]?.lastError !== undefined) return;
    const { body, points } = metricsAsLineProtocol(this.deps.metrics, this.deps.config.head.name, BigInt(Date.now()) * 1_000_000n);
    if (!points) return;
    try { await this.accept(Buffer.from(body), 'ns', points, false); } catch (e) { this.log.warn({ err: e }, 'telemetry: writing bootherd\'s own metrics failed'); }
  }

  async stop(): Promise<void> {
    clearInterval(this.selfTimer);
    this.started = false;
    await Promise.all(this.targets.map((t) => t.stop()));
    for (const t of this.targets) t.queue.close();
  }

  get running(): boolean { return this.started; }

  /**
   * Queues a checked batch for this head's InfluxDB and (unless `relayed`)
   * for every other head; resolves once it is on disk in every queue it went to.
   */
  async accept(payload: Buffer, precision: Precision, points: number, relayed: boolean): Promise<AcceptResult> {
    const meta = { precision, acceptedAt: Date.now(), points };
    const record = encodeRecord({ ...meta, payload });
    const synced: Promise<void>[] = [];
    const droppedFor: string[] = [];
    for (const t of this.targets) {
      if (relayed && t.spec.name !== 'influxdb') continue;
      const done = t.queue.append(record, meta);
      if (done) { synced.push(done); continue; }
      droppedFor.push(t.spec.name);
      const dropped = this.droppedFamily.with({ target: t.spec.name, reason: 'queue-full' });
      if (dropped.value === 0 || dropped.value % 100_000 < points) this.log.warn({ target: t.spec.name, points, droppedSoFar: dropped.value + points }, 'telemetry queue full (telemetry.queueBytes): batch dropped for this target');
      dropped.value += points;
    }
    await Promise.all(synced);
    this.accepted.value += points;
    this.acceptedBatches.value++;
    return { droppedFor };
  }

  status(): Record<string, unknown> {
    const now = Date.now();
    return {
      running: this.started,
      influxdb: this.deps.config.telemetry.influxdb,
      database: this.deps.config.telemetry.database,
      acceptedPoints: this.accepted.value,
      targets: this.targets.map((t) => {
        const oldest = t.queue.oldestAcceptedAt;
        return {
          name: t.spec.name,
          url: t.spec.url,
          queuedBatches: t.queue.depthBatches,
          queuedPoints: t.queue.depthPoints,
          queuedBytes: t.queue.depthBytes,
          oldestPointAgeSeconds: oldest === undefined ? 0 : (now - oldest) / 1000,
          deliveredPoints: t.delivered,
          deliveryErrors: t.errors,
          droppedPoints: this.droppedFamily.with({ target: t.spec.name, reason: 'queue-full' }).value,
          lastError: t.lastError ?? null,
        };
      }),
    };
  }
}
