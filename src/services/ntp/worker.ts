/**
 * An extra NTP answering thread (ntp.workers > 1): its own socket on the
 * service's port (SO_REUSEPORT: the kernel spreads clients over the sockets),
 * its own rate-limit table, and a mirror of the main thread's synchronisation
 * state, which the main thread posts whenever it re-evaluates. It counts what
 * it does and posts the counts every second; the main thread adds them to the
 * metrics.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { Leap, STRATUM_UNSYNCHRONISED, timestamp } from '../../../protocols/ntp/codec.ts';
import { createLogger } from '../../log.ts';
import { SystemClock } from './clock.ts';
import type { DropReason, ReplyKind } from './context.ts';
import type { RateLimitOptions } from './rate-limit.ts';
import { openServerSocket, Responder } from './responder.ts';
import type { SystemState } from './sync.ts';

export interface WorkerData {
  readonly index: number;
  readonly address: string;
  readonly port: number;
  readonly rateLimit: RateLimitOptions | undefined;
  readonly logLevel: string;
}

/** The state as posted: `since` as an absolute time (timeOrigin + reading), since each thread reads its own clock. */
export interface StateMessage { readonly type: 'state'; readonly state: SystemState; readonly sinceAbsolute: number }
export interface StopMessage { readonly type: 'stop' }
export type ToWorker = StateMessage | StopMessage;

export interface TallyMessage {
  readonly type: 'tally';
  readonly received: number;
  readonly replied: Partial<Record<ReplyKind, number>>;
  readonly dropped: Partial<Record<DropReason, number>>;
}
export type FromWorker = { readonly type: 'ready' } | { readonly type: 'failed'; readonly message: string } | TallyMessage | { readonly type: 'stopped' };

const port = parentPort!;
const data = workerData as WorkerData;
const log = createLogger(data.logLevel as 'info').child({ svc: 'ntp', worker: data.index });
const clock = new SystemClock();
const state: SystemState = {
  synchronised: false, leap: Leap.UNSYNCHRONISED, stratum: STRATUM_UNSYNCHRONISED, referenceId: 0,
  referenceTime: timestamp(), rootDelay: 0, rootDispersion: 0, since: 0,
};

let received = 0;
let replied: Partial<Record<ReplyKind, number>> = {};
let dropped: Partial<Record<DropReason, number>> = {};
function flush(): void {
  if (!received) return;
  port.postMessage({ type: 'tally', received, replied, dropped } satisfies TallyMessage);
  received = 0;
  replied = {};
  dropped = {};
}

const responder = new Responder({
  clock,
  served: state,
  rateLimit: data.rateLimit,
  log,
  tally: {
    received: () => { received++; },
    replied: (kind) => { replied[kind] = (replied[kind] ?? 0) + 1; },
    dropped: (reason) => { dropped[reason] = (dropped[reason] ?? 0) + 1; },
  },
});

try {
  const socket = openServerSocket(data.address, data.port, true);
  await responder.attach(socket);
  const timer = setInterval(() => {
    flush();
    const step = clock.checkStep();
    if (step !== undefined) log.warn({ stepMs: step }, 'system clock stepped; re-anchored');
  }, 1000);
  port.on('message', (m: ToWorker) => {
    if (m.type === 'state') {
      Object.assign(state, m.state);
      state.since = m.sinceAbsolute - performance.timeOrigin;
    } else {
      clearInterval(timer);
      flush();
      void socket.close().then(() => {
        port.postMessage({ type: 'stopped' } satisfies FromWorker);
        port.close();
      });
    }
  });
  port.postMessage({ type: 'ready' } satisfies FromWorker);
} catch (e) {
  port.postMessage({ type: 'failed', message: (e as Error).message } satisfies FromWorker);
  port.close();
}
