/**
 * Where a head finds etcd, from its cluster file: the endpoints its client
 * uses, the cluster's keys, and this head's own member
 * when `store: { kind: etcd }` gives no endpoints (every head of `heads:`
 * runs one). One function, so serve, check and store migrate agree.
 */
import path from 'node:path';
import { configPath, type Config } from '../config/load.ts';
import { clientUrlOf, type EtcdMemberOptions } from './etcd-member.ts';

export interface EtcdPlan {
  /** Client URLs, this head's own member first: the client moves to the next when one fails. */
  readonly endpoints: readonly string[];
  /** The cluster's name: the store's records live under /bootherd/<cluster>/ (src/store/etcd.ts). */
  readonly cluster: string;
  /**
   * The head registry's keys (src/store/etcd-heads.ts); outside the store's
   * prefix, whose watch would otherwise take them for malformed records.
   */
  readonly headsPrefix: string;
  /** This head's member, or undefined when the file names an etcd run elsewhere. */
  readonly member: Omit<EtcdMemberOptions, 'log'> | undefined;
}

/** The plan for `store: { kind: etcd }`, undefined for the embedded store. */
export function etcdPlanOf(config: Config): EtcdPlan | undefined {
  const { store } = config;
  if (store.kind !== 'etcd') return undefined;
  const cluster = config.cluster.name;
  const headsPrefix = `/bootherd-heads/${cluster}/`;
  if (store.endpoints) return { endpoints: store.endpoints, cluster, headsPrefix, member: undefined };
  const self = config.heads.find((h) => h.name === config.head.name);
  const others = config.heads.filter((h) => h !== self);
  return {
    endpoints: [...(self ? [self] : []), ...others].map((h) => clientUrlOf(h.address)),
    cluster,
    headsPrefix,
    member: {
      name: config.head.name,
      address: config.head.address,
      heads: config.heads,
      dataDir: path.join(config.stateDir, 'etcd'),
      clusterToken: `bootherd-${config.cluster.name}`,
      ...(store.tls ? { peerTls: { ca: configPath(config, store.tls.ca), cert: configPath(config, store.tls.cert), key: configPath(config, store.tls.key) } } : {}),
    },
  };
}
