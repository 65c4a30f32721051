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
  readonly ip: string;
  readonly profile: string;
  readonly source: NodeRecord['source'];
  /** The DHCP lease on the node's reserved address, if it has had one. */
  readonly lease: Pick<LeaseRecord, 'state' | 'mac' | 'expiresAt' | 'updatedAt'> | null;
  /** The node's last boot, stage by stage. */
  readonly boot: BootTimeline | null;
}

export function nodeView(store: Store, n: NodeRecord): NodeView {
  const lease = store.get('leases', n.ip);
  return {
    name: n.name,
    macs: n.macs,
    ip: n.ip,
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
