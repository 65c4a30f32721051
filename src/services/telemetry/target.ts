/**
 * Delivers one target's queue: POSTs of the next batches to InfluxDB's 1.x
 * /write (this head's InfluxDB, or another head's ingest endpoint, which
 * speaks the same API), up to IN_FLIGHT at once, each coalescing queued
 * batches up to POST_BYTES. The cursor moves only over the oldest POSTs
 * answered 204, so after a crash what follows it is sent again: harmless,
 * as InfluxDB keeps one point per series and timestamp (the ingest stamps
 * untimed points before queueing). A failure is retried with a growing wait
 * (0.5 s doubling to telemetry.maxBackoff), one POST at a time until one
 * succeeds. A 400 (InfluxDB refused the points, e.g. a field whose type
 * conflicts with what is stored) would refuse them forever: those batches
 * are dropped, counted and logged.
 */
import http from 'node:http';
import https from 'node:https';
import type { Logger } from '../../log.ts';
import type { Series } from '../../metrics.ts';
import { v1PrecisionParam } from '../../../protocols/influx/line-protocol.ts';
import type { DiskQueue, QueuedBatch } from './queue.ts';

/** Payload bytes in one POST at most (queued batches are coalesced up to it). */
export const POST_BYTES = 4 << 20;
/** POSTs in flight per target. */
export const IN_FLIGHT = 4;
const REQUEST_TIMEOUT_MS = 30_000;
const NEWLINE = Buffer.from('\n');

type Outcome = 'ok' | 'rejected' | 'retry';

/** One POST's batches, in queue order, and how its last attempt went. */
interface Slot {
  readonly batches: QueuedBatch[];
  readonly points: number;
  state: 'sending' | Outcome;
}

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
  private readonly abort = new AbortController();
  /** Connections kept open to the target, one per POST in flight. */
  private readonly agent: http.Agent;
  private sleeping: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  /** POSTs taken from the queue and not yet acknowledged, oldest first. */
  private readonly window: Slot[] = [];
  private settled: (() => void) | undefined;
  private lastOutcome: Outcome = 'ok';
  lastError: string | undefined;
  lastDeliveredAt: number | undefined;

  constructor(readonly spec: TargetSpec, readonly queue: DiskQueue, private readonly counters: TargetCounters, private readonly maxBackoffMs: number, private readonly log: Logger,
    private readonly postBytes = POST_BYTES) {
    this.agent = new (spec.url.startsWith('https:') ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: IN_FLIGHT });
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    this.queue.interrupt();
    this.settled?.();
    if (this.sleeping) { clearTimeout(this.sleeping.timer); this.sleeping.wake(); }
    await this.loop;
    this.agent.destroy();
  }

  get errors(): number { return this.counters.errors.value; }
  get delivered(): number { return this.counters.delivered.value; }

  private async run(): Promise<void> {
    let backoff = 500;
    while (this.running) {
      this.ackPrefix();
      let sending = 0;
      let failed: Slot | undefined;
      for (const w of this.window) { if (w.state === 'sending') sending++; else if (w.state === 'retry') failed ??= w; }
      if (failed && sending === 0) {
        if (this.lastOutcome === 'retry') {
          // The last answer was a failure: wait, then send the oldest failed POST alone (a down target gets probes, not bursts).
          this.counters.errors.value++;
          await this.sleep(backoff);
          if (!this.running) break;
          backoff = Math.min(backoff * 2, this.maxBackoffMs);
          this.send(failed);
        } else {
          // A probe got through: send every failed POST again at once.
          for (const w of this.window) if (w.state === 'retry') this.send(w);
        }
        continue;
      }
      if (!failed && this.window.length < IN_FLIGHT && this.queue.untaken > 0) {
        let batches: QueuedBatch[];
        try {
          batches = this.queue.take(this.postBytes);
        } catch (e) {
          // The queue's files are unreadable (removed, disk error): say so and try again later, never die.
          this.failed(`reading the queue: ${(e as Error).message}`);
          this.counters.errors.value++;
          await this.sleep(this.maxBackoffMs);
          continue;
        }
        const slot: Slot = { batches, points: batches.reduce((n, b) => n + b.points, 0), state: 'sending' };
        this.window.push(slot);
        this.send(slot);
        continue;
      }
      if (sending === 0) {
        await this.queue.waitForData();
        continue;
      }
      // Wait for an answer (send() wakes this).
      await new Promise<void>((r) => { this.settled = r; });
      this.settled = undefined;
      if (this.lastOutcome !== 'retry') backoff = 500;
    }
  }

  /** Starts (or restarts) one POST; its answer wakes the loop. */
  private send(slot: Slot): void {
    slot.state = 'sending';
    void this.post(slot.batches).then((outcome) => {
      slot.state = outcome;
      this.lastOutcome = outcome;
      if (outcome === 'ok') { this.lastDeliveredAt = Date.now(); this.lastError = undefined; }
      this.settled?.();
    });
  }

  /** Moves the cursor over the oldest POSTs that are answered. */
  private ackPrefix(): void {
    let count = 0;
    while (this.window.length && (this.window[0]!.state === 'ok' || this.window[0]!.state === 'rejected')) {
      const w = this.window.shift()!;
      (w.state === 'ok' ? this.counters.delivered : this.counters.rejected).value += w.points;
      count += w.batches.length;
    }
    if (count) this.queue.ack(count);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      const timer = setTimeout(() => { this.sleeping = undefined; r(); }, ms);
      this.sleeping = { timer, wake: () => { this.sleeping = undefined; r(); } };
    });
  }

  private async post(batches: QueuedBatch[], createdDatabase = false): Promise<Outcome> {
    const { spec } = this;
    const parts: Buffer[] = [];
    for (const b of batches) {
      parts.push(b.payload);
      if (b.payload.length && b.payload[b.payload.length - 1] !== 0x0a) parts.push(NEWLINE);
    }
    const url = new URL(`${spec.url}/write?db=${encodeURIComponent(spec.database)}&precision=${v1PrecisionParam(batches[0]!.precision)}`);
    try {
      const res = await this.request(url, parts.length === 1 ? parts[0]! : Buffer.concat(parts));
      const text = res.text;
      if (res.status === 204) return 'ok';
      const why = `${res.status} ${text.trim().slice(0, 300)}`;
      if (res.status === 404 && spec.createDatabase && !createdDatabase && /database not found/.test(text)) {
        if (await this.createDatabase()) return this.post(batches, true);
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
    }
  }
  /**
   * One POST over a kept-alive connection (node:http, not fetch: fetch
   * copies every body and costs ~2x the CPU per request, which the sender
   * pays for every target).
   */
  private request(url: URL, body: Buffer): Promise<{ status: number; text: string }> {
    const { spec } = this;
    return new Promise((resolve, reject) => {
      const req = (url.protocol === 'https:' ? https : http).request(url, {
        method: 'POST',
        agent: this.agent,
        headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': body.length, ...(spec.authorization ? { authorization: spec.authorization } : {}), ...spec.headers },
        signal: this.abort.signal,
        timeout: REQUEST_TIMEOUT_MS,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS / 1000} s`)));
      req.on('error', reject);
      req.end(body);
    });
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
