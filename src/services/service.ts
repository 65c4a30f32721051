/**
 * The contract between the composition root (src/server.ts) and the
 * services, and what every service is built from. It lives below server.ts
 * so that no service imports the composition root.
 */
import type { ClusterModel } from '../cluster/model.ts';
import type { BootTimelines } from '../cluster/timeline.ts';
import type { Config } from '../config/load.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Store } from '../store/store.ts';

export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** What `bootherd status` and the API's /status (and /ntp) show about the service (optional). */
  status?(): object;
}

/**
 * What the services share. Each service's dependencies are these (or the
 * part of them it reads) plus options of its own.
 */
export interface ServiceDeps {
  readonly config: Config;
  readonly model: ClusterModel;
  readonly store: Store;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Where boot steps are recorded; tests that do not look at timelines leave it out. */
  readonly timelines?: BootTimelines;
}
