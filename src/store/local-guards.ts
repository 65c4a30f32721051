/**
 * Guards for the single-process stores (memory, embedded): revisions per
 * record and the client index of claims, kept in memory. One process owns
 * the data, so checking guards and applying the writes in one tick is
 * atomic, and revisions only need to agree within this process: a record
 * loaded from disk is at revision 1 until written again, and the client
 * index starts empty (a claim then only competes with this process's own).
 */
import type { LeaseRecord } from '../cluster/types.ts';
import type { ClaimExpect, ClaimOutcome, CollectionName, StoreGuard } from './store.ts';

export class LocalGuards {
  private revisions = new Map<string, number>();
  private clients = new Map<string, { readonly ip: string; readonly revision: number }>();
  private last = 1;

  constructor(private readonly exists: (collection: CollectionName, key: string) => boolean) {}

  revision(collection: CollectionName, key: string): number {
    const r = this.revisions.get(`${collection}/${key}`);
    if (r !== undefined) return r;
    return this.exists(collection, key) ? 1 : 0;
  }

  /** Records a write (`present` false: a delete). */
  wrote(collection: CollectionName, key: string, present: boolean): void {
    this.last++;
    if (present) this.revisions.set(`${collection}/${key}`, this.last);
    else this.revisions.set(`${collection}/${key}`, 0);
  }

  holds(guards: readonly StoreGuard[]): boolean {
    for (const g of guards) if ('collection' in g && this.revision(g.collection, g.key) !== g.revision) return false;
    return true;
  }

  claimRevisions(ip: string, clientKey: string): ClaimExpect {
    return { address: this.revision('leases', ip), client: this.clients.get(clientKey)?.revision ?? 0 };
  }

  /** The refusal when `expect` no longer holds, undefined when the claim may go ahead. */
  refusal(ip: string, clientKey: string, expect: ClaimExpect, current: LeaseRecord | undefined): ClaimOutcome | undefined {
    const now = this.claimRevisions(ip, clientKey);
    if (now.address === expect.address && now.client === expect.client) return undefined;
    return { claimed: false, address: { lease: current, revision: now.address }, client: { ip: this.clients.get(clientKey)?.ip, revision: now.client } };
  }

  /** Points the client's entry at `ip`; call after the lease's own `wrote`. */
  bound(clientKey: string, ip: string): number {
    this.clients.set(clientKey, { ip, revision: this.last });
    return this.last;
  }
}
