/**
 * The shapes the API, the event stream and the UI show: a node joined with
 * its lease and its last boot, read live from the model and the store.
 */
import type { ClusterModel } from '../../cluster/model.ts';
import type { BootTimeline, LeaseRecord, NodeRecord } from '../../cluster/types.ts';
import type { Store } from '../../store/store.ts';

export interface NodeView {
  readonly name: string;
  readonly macs: readonly string[];
  /** Its reserved address, or on a proxy subnet the one bootherd saw it use (null before). */
  readonly ip: string | null;
  /** Where `ip` came from: the reservation, or how it was learned on a proxy subnet. */
  readonly ipFrom: 'reservation' | NonNullable<NodeRecord['learned']>['from'] | null;
  readonly profile: string;
  readonly source: NodeRecord['source'];
  /** The DHCP lease on the node's reserved address, if it has had one. */
  readonly lease: Pick<LeaseRecord, 'state' | 'mac' | 'expiresAt' | 'updatedAt'> | null;
  /** The node's last boot, stage by stage. */
  readonly boot: BootTimeline | null;
}

export function nodeView(store: Store, n: NodeRecord): NodeView {
  const lease = n.ip !== undefined && !n.learned ? store.get('leases', n.ip) : undefined;
  return {
    name: n.name,
    macs: n.macs,
    ip: n.ip ?? null,
    ipFrom: n.learned ? n.learned.from : n.ip !== undefined ? 'reservation' : null,
    profile: n.profile,
    source: n.source,
    lease: lease ? { state: lease.state, mac: lease.mac, expiresAt: lease.expiresAt, updatedAt: lease.updatedAt } : null,
    boot: store.get('boots', n.name) ?? null,
  };
}

export function nodeViews(model: ClusterModel, store: Store): NodeView[] {
  const out: NodeView[] = [];
  for (const n of model.nodes()) out.push(nodeView(store, n));
  return out.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}
