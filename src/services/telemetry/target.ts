/**
 * Delivers one target's queue, oldest first: a POST of the next batches to
 * InfluxDB's 1.x /write (this head's InfluxDB, or another head's ingest
 * endpoint, which speaks the same API), and on 204 the cursor moves. A
 * failure is retried with a growing wait (0.5 s doubling to
 * telemetry.maxBackoff); nothing later goes first. A 400 (InfluxDB refused
 * the points, e.g. a field whose type conflicts with what is stored) would
 * refuse them forever: those batches are dropped, counted and logged.
 */
import type { Logger } from '../../log.ts';
import type { Series } from '../../metrics.ts';
import { v1PrecisionParam } from '../../../protocols/influx/line-protocol.ts';
import type { DiskQueue, QueuedBatch } from './queue.ts';

/** Payload bytes sent in one POST at most. */
const POST_BYTES = 4 << 20;
const REQUEST_TIMEOUT_MS = 30_000;

export interface TargetSpec {
  /** Directory name and metric label: `influxdb` or `head-<name>`. */
  readonly name: string;
  /** Base URL (scheme, host, port). */
  readonly url: string;
  readonly database: string;
  /** Authorization header value, if the target needs one. */
  readonly authorization?: string;
  /** Headers marking the batch relayed (sent to other heads). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Creates the database on "database not found" (the head's own InfluxDB). */
  readonly createDatabase: boolean;
}

export interface TargetCounters {
  readonly delivered: Series;
  readonly errors: Series;
  readonly rejected: Series;
}

export class Target {
  private running = false;
  private loop: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private sleeping: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  lastError: string | undefined;
  lastDeliveredAt: number | undefined;

  constructor(readonly spec: TargetSpec, readonly queue: DiskQueue, private readonly counters: TargetCounters, private readonly maxBackoffMs: number, private readonly log: Logger) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort?.abort();
    this.queue.interrupt();
    if (this.sleeping) { clearTimeout(this.sleeping.timer); this.sleeping.wake(); }
    await this.loop;
  }

  get errors(): number { return this.counters.errors.value; }
  get delivered(): number { return this.counters.delivered.value; }

  private async run(): Promise<void> {
    let backoff = 500;
    while (this.running) {
      await this.queue.waitForData();
      if (!this.running) break;
      let batches;
      try {
        batches = this.queue.peek(POST_BYTES);
      } catch (e) {
        // The queue's files are unreadable (removed, disk error): say so and try again later, never die.
        this.failed(`reading the queue: ${(e as Error).message}`);
        this.counters.errors.value++;
        await this.sleep(this.maxBackoffMs);
        continue;
      }
      const outcome = await this.post(batches);
      if (!this.running && outcome !== 'ok') break;
      if (outcome === 'ok' || outcome === 'rejected') {
        const points = batches.reduce((s, b) => s + b.points, 0);
        (outcome === 'ok' ? this.counters.delivered : this.counters.rejected).value += points;
        if (outcome === 'ok') { this.lastDeliveredAt = Date.now(); this.lastError = undefined; }
        this.queue.ack(batches.length);
        backoff = 500;
        continue;
      }
      if (outcome === 'retry-now') continue;
      this.counters.errors.value++;
      await this.sleep(backoff);
      backoff = Math.min(backoff * 2, this.maxBackoffMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      const timer = setTimeout(() => { this.sleeping = undefined; r(); }, ms);
      this.sleeping = { timer, wake: () => { this.sleeping = undefined; r(); } };
    });
  }

  private async post(batches: QueuedBatch[]): Promise<'ok' | 'rejected' | 'retry' | 'retry-now'> {
    const { spec } = this;
    const parts: Buffer[] = [];
    for (const b of batches) {
      parts.push(b.payload);
      if (b.payload.length && b.payload[b.payload.length - 1] !== 0x0a) parts.push(Buffer.from('\n'));
    }
    const url = `${spec.url}/write?db=${encodeURIComponent(spec.database)}&precision=${v1PrecisionParam(batches[0]!.precision)}`;
    this.abort = new AbortController();
    const timer = setTimeout(() => this.abort?.abort(), REQUEST_TIMEOUT_MS);
    try {
      const res = await fetch(url, {
        method: 'POST',
        body: Buffer.concat(parts),
        headers: { 'content-type': 'text/plain; charset=utf-8', ...(spec.authorization ? { authorization: spec.authorization } : {}), ...spec.headers },
        signal: this.abort.signal,
      });
      const text = await res.text();
      if (res.status === 204) return 'ok';
      const why = `${res.status} ${text.trim().slice(0, 300)}`;
      if (res.status === 404 && spec.createDatabase && /database not found/.test(text)) {
        if (await this.createDatabase()) return 'retry-now';
      }
      if (res.status === 400) {
        this.log.warn({ target: spec.name, batches: batches.length, answer: why }, 'telemetry target refused the points as malformed; they are dropped');
        return 'rejected';
      }
      this.failed(why);
      return 'retry';
    } catch (e) {
      if (this.running) this.failed((e as Error).cause ? String(((e as Error).cause as Error).message ?? (e as Error).cause) : (e as Error).message);
      return 'retry';
    } finally {
      clearTimeout(timer);
    }
  }

  private async createDatabase(): Promise<boolean> {
    const q = `CREATE DATABASE "${this.spec.database.replace(/["\\]/g, '\\$&')}"`;
    try {
      const res = await fetch(`${this.spec.url}/query`, { method: 'POST', body: new URLSearchParams({ q }), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      await res.text();
      if (res.ok) { this.log.info({ target: this.spec.name, database: this.spec.database }, 'telemetry: created the InfluxDB database'); return true; }
      this.failed(`CREATE DATABASE: ${res.status}`);
    } catch (e) {
      this.failed(`CREATE DATABASE: ${(e as Error).message}`);
    }
    return false;
  }

  private failed(why: string): void {
    if (why !== this.lastError) this.log.warn({ target: this.spec.name, url: this.spec.url, err: why }, 'telemetry delivery failed; retrying');
    this.lastError = why;
  }
}
