/**
 * Keeps the zone data in step with the cluster model, in the primary.
 *
 * Any node, host or SRV change marks the data stale; the next query (or the
 * next push to the workers, one turn of the event loop later) rebuilds it,
 * so a burst of API changes costs one rebuild and a query after a change
 * always sees it. Named DHCP leases are followed record by record: a renewal
 * that only moves a lease's end changes nothing, and a timer at the earliest
 * end removes names whose lease ran out (no store change announces that).
 */
import type { ClusterModel } from '../../cluster/model.ts';
import type { LeaseRecord } from '../../cluster/types.ts';
import type { Config } from '../../config/load.ts';
import type { Logger } from '../../log.ts';
import type { Store } from '../../store/store.ts';
import { buildZoneData, leaseLabel, type LeaseName, type ZoneData } from './zone-data.ts';
import { ZoneIndex } from './zone-index.ts';

/** setTimeout's limit (about 24.8 days); a later lease end is checked again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ZoneSource {
  private readonly leases = new Map<string, LeaseName>();
  private readonly listeners = new Set<(data: ZoneData) => void>();
  private readonly unsubscribe: Array<() => void> = [];
  private data: ZoneData | undefined;
  private compiled: ZoneIndex | undefined;
  private serial = 0;
  private pushQueued = false;
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiryAt = Infinity;
  private lastConflicts = '';

  constructor(
    private readonly model: ClusterModel,
    private readonly store: Store,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    for (const lease of store.values('leases')) this.trackLease(lease.ip, lease);
    this.armExpiry();
    this.unsubscribe.push(model.onChange(() => this.stale()));
    this.unsubscribe.push(store.onChange((c) => {
      if (c.collection === 'leases' && this.trackLease(c.key, c.value as LeaseRecord | undefined)) this.stale();
    }));
  }

  /** The current zone data, rebuilt first if anything changed. */
  current(): ZoneData {
    if (!this.data) {
      const now = this.clock();
      this.serial = Math.max(this.serial + 1, Math.floor(now / 1000));
      this.data = buildZoneData({
        domain: this.model.domain,
        head: this.config.head,
        subnets: this.model.subnets.map((s) => s.cidr),
        nodes: this.model.nodes(),
        hosts: this.model.hosts(),
        srv: this.model.srvRecords(),
        leases: this.leases.values(),
        dns: this.config.dns,
        serial: this.serial,
        now,
      });
      const conflicts = this.data.conflicts.join('; ');
      if (conflicts && conflicts !== this.lastConflicts) this.log.warn({ conflicts: this.data.conflicts }, 'DNS names claimed twice; the first source wins');
      this.lastConflicts = conflicts;
    }
    return this.data;
  }

  /** The main thread's lookup index for the current data. */
  index(): ZoneIndex {
    const data = this.current();
    if (this.compiled?.data !== data) this.compiled = new ZoneIndex(data);
    return this.compiled;
  }

  /** Called with fresh zone data after every change (the workers' feed). */
  onUpdate(listener: (data: ZoneData) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    for (const u of this.unsubscribe) u();
    clearTimeout(this.expiryTimer);
    this.listeners.clear();
  }

  private stale(): void {
    this.data = undefined;
    if (this.pushQueued || !this.listeners.size) return;
    this.pushQueued = true;
    setImmediate(() => {
      this.pushQueued = false;
      const data = this.current();
      for (const l of this.listeners) l(data);
    });
  }

  /** Follows one lease; returns whether the set of published names changed. */
  private trackLease(key: string, lease: LeaseRecord | undefined): boolean {
    const label = lease && lease.state === 'bound' ? leaseLabel(lease.hostname) : undefined;
    const old = this.leases.get(key);
    if (!lease || !label || lease.expiresAt <= this.clock()) {
      return this.leases.delete(key);
    }
    this.leases.set(key, { name: label, ip: lease.ip, expiresAt: lease.expiresAt });
    if (lease.expiresAt < this.expiryAt) this.armAt(lease.expiresAt);
    return !old || old.name !== label || old.ip !== lease.ip;
  }

  /** Sets the timer at the earliest end among the named leases. */
  private armExpiry(): void {
    let next = Infinity;
    for (const l of this.leases.values()) if (l.expiresAt < next) next = l.expiresAt;
    this.armAt(next);
  }

  private armAt(at: number): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.expiryAt = at;
    if (at === Infinity) return;
    this.expiryTimer = setTimeout(() => this.expire(), Math.min(MAX_TIMER_MS, Math.max(0, at - this.clock())));
    this.expiryTimer.unref();
  }

  private expire(): void {
    const now = this.clock();
    let changed = false;
    for (const [key, l] of this.leases) if (l.expiresAt <= now) { this.leases.delete(key); changed = true; }
    if (changed) this.stale();
    this.armExpiry();
  }
}
