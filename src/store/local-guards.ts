/**
 * Guards for the single-process stores (memory, embedded): revisions per
 * record and the client index of claims, kept in memory. One process owns
 * the data, so checking guards and applying the writes in one tick is
 * atomic, and revisions only need to agree within this process: a record
 * loaded from disk is at revision 1 until written again, and the client
 * index starts empty (a claim then only competes with this process's own).
 */
import type { LeaseRecord } from '../cluster/types.ts';
import type { ClaimExpect, ClaimOutcome, ClaimSupersede, CollectionName, Store, StoreGuard, StoreOp } from './store.ts';

/** What the guards read and write of the store they guard. */
type GuardedStore = Pick<Store, 'get' | 'put' | 'delete'>;

export class LocalGuards {
  private revisions = new Map<string, number>();
  private clients = new Map<string, { readonly ip: string; readonly revision: number }>();
  private last = 1;

  constructor(private readonly store: GuardedStore) {}

  revision(collection: CollectionName, key: string): number {
    const r = this.revisions.get(`${collection}/${key}`);
    if (r !== undefined) return r;
    return this.store.get(collection, key) !== undefined ? 1 : 0;
  }

  /** Records a write (`present` false: a delete). */
  wrote(collection: CollectionName, key: string, present: boolean): void {
    this.last++;
    if (present) this.revisions.set(`${collection}/${key}`, this.last);
    else this.revisions.set(`${collection}/${key}`, 0);
  }

  /** Store.transact: the guards are checked and the writes begun in one tick, so nothing comes between. */
  async transact(guards: readonly StoreGuard[], ops: readonly StoreOp[]): Promise<boolean> {
    if (!this.holds(guards)) return false;
    await Promise.all(ops.map((o) => (o.op === 'put' ? this.store.put(o.collection, o.key, o.value) : this.store.delete(o.collection, o.key))));
    return true;
  }

  claimRevisions(ip: string, clientKey: string): ClaimExpect {
    return { address: this.revision('leases', ip), client: this.clients.get(clientKey)?.revision ?? 0 };
  }

  claimedBy(clientKey: string): string | undefined {
    return this.clients.get(clientKey)?.ip;
  }

  /** Store.claim: the lease is put like any record; the client's entry is in memory only (see above). */
  async claim(clientKey: string, lease: LeaseRecord, expect: ClaimExpect, supersede?: ClaimSupersede): Promise<ClaimOutcome> {
    const now = this.claimRevisions(lease.ip, clientKey);
    const moved = supersede !== undefined && this.revision('leases', supersede.ip) !== supersede.revision;
    if (now.address !== expect.address || now.client !== expect.client || moved) {
      return { claimed: false, address: { lease: this.store.get('leases', lease.ip), revision: now.address }, client: { ip: this.clients.get(clientKey)?.ip, revision: now.client } };
    }
    const previous = supersede?.lease ? this.store.put('leases', supersede.ip, supersede.lease) : undefined;
    const done = this.store.put('leases', lease.ip, lease);
    // After the put's own `wrote`: the client's entry takes the lease's revision.
    this.clients.set(clientKey, { ip: lease.ip, revision: this.last });
    await Promise.all([previous, done]);
    return { claimed: true, revision: this.last };
  }

  private holds(guards: readonly StoreGuard[]): boolean {
    for (const g of guards) if ('collection' in g && this.revision(g.collection, g.key) !== g.revision) return false;
    return true;
  }
}
