/**
 * The primary's side of the DNS worker threads: starts them, posts them the
 * zone data after every change, adds up their counters, stops them.
 */
import { Worker } from 'node:worker_threads';
import type { LevelWithSilent } from 'pino';
import type { Logger } from '../../log.ts';
import { addCounterDelta, type DnsCounters } from './counters.ts';
import type { ResponderOptions } from './responder.ts';
import type { ZoneData } from './zone-data.ts';
import type { ZoneSource } from './zone-source.ts';

export interface WorkerInit {
  readonly id: number;
  readonly address: string;
  readonly port: number;
  readonly logLevel: LevelWithSilent;
  readonly responder: Pick<ResponderOptions, 'upstreams' | 'upstreamTimeoutMs' | 'cache' | 'ednsUdpSize'>;
  /** CIDR texts of the networks that may recurse (besides loopback). */
  readonly recursionNetworks: readonly string[];
  readonly zone: ZoneData;
}

export type ToWorker = { readonly kind: 'zone'; readonly data: ZoneData } | { readonly kind: 'stop' };
export type FromWorker =
  | { readonly kind: 'ready' }
  | { readonly kind: 'failed'; readonly message: string }
  | { readonly kind: 'counters'; readonly values: readonly number[] };

const ENTRY = new URL('./worker.mjs', import.meta.url);
const STOP_TIMEOUT_MS = 5000;

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly count: number,
    private readonly init: Omit<WorkerInit, 'id' | 'zone'>,
    private readonly source: ZoneSource,
    private readonly counters: DnsCounters,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = this.source.onUpdate((data) => {
      for (const w of this.workers) w.postMessage({ kind: 'zone', data } satisfies ToWorker);
    });
    await Promise.all(Array.from({ length: this.count }, (_, id) => this.spawn(id)));
  }

  private spawn(id: number): Promise<void> {
    const worker = new Worker(ENTRY, { workerData: { ...this.init, id, zone: this.source.current() } satisfies WorkerInit });
    this.workers.push(worker);
    let reported: readonly number[] = [];
    return new Promise((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        if (m.kind === 'ready') resolve();
        else if (m.kind === 'failed') reject(new Error(`DNS worker ${id}: ${m.message}`));
        else { addCounterDelta(this.counters, reported, m.values); reported = m.values; }
      });
      worker.on('error', (e) => { this.log.error({ err: e, worker: id }, 'DNS worker failed'); reject(e); });
      worker.on('exit', (code) => { if (code !== 0) reject(new Error(`DNS worker ${id} exited with ${code}`)); });
    });
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await Promise.all(this.workers.map((w) => new Promise<void>((resolve) => {
      const timer = setTimeout(() => void w.terminate(), STOP_TIMEOUT_MS);
      w.once('exit', () => { clearTimeout(timer); resolve(); });
      w.postMessage({ kind: 'stop' } satisfies ToWorker);
    })));
    this.workers.length = 0;
  }
}
