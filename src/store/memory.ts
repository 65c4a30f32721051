/**
 * A store that keeps everything in memory and forgets it on exit: for dry runs
 * (`bootherd explain`) and unit tests. Same interface as the others.
 */
import type { LeaseRecord } from '../cluster/types.ts';
import { LocalGuards } from './local-guards.ts';
import type { ChangeListener, ClaimExpect, ClaimOutcome, ClaimSupersede, CollectionName, Collections, Store, StoreGuard, StoreOp } from './store.ts';

export class MemoryStore implements Store {
  /** `shared: true` makes the services take the several-heads path (tests of it without etcd). */
  constructor(readonly options: { readonly shared?: boolean } = {}) {}
  get shared(): boolean { return this.options.shared === true; }
  private tables = new Map<CollectionName, Map<string, unknown>>();
  private listeners = new Set<ChangeListener>();
  private guards = new LocalGuards(this);

  async open(): Promise<void> {}
  async close(): Promise<void> {}

  private table(c: CollectionName): Map<string, unknown> {
    let t = this.tables.get(c);
    if (!t) { t = new Map(); this.tables.set(c, t); }
    return t;
  }

  get<C extends CollectionName>(collection: C, key: string): Collections[C] | undefined {
    return this.table(collection).get(key) as Collections[C] | undefined;
  }

  values<C extends CollectionName>(collection: C): IterableIterator<Collections[C]> {
    return this.table(collection).values() as IterableIterator<Collections[C]>;
  }

  size(collection: CollectionName): number {
    return this.table(collection).size;
  }

  revision(collection: CollectionName, key: string): number {
    return this.guards.revision(collection, key);
  }

  transact(guards: readonly StoreGuard[], ops: readonly StoreOp[]): Promise<boolean> {
    return this.guards.transact(guards, ops);
  }

  claimRevisions(ip: string, clientKey: string): ClaimExpect {
    return this.guards.claimRevisions(ip, clientKey);
  }

  claimedBy(clientKey: string): string | undefined {
    return this.guards.claimedBy(clientKey);
  }

  claim(clientKey: string, lease: LeaseRecord, expect: ClaimExpect, supersede?: ClaimSupersede): Promise<ClaimOutcome> {
    return this.guards.claim(clientKey, lease, expect, supersede);
  }

  async put<C extends CollectionName>(collection: C, key: string, value: Collections[C]): Promise<void> {
    this.table(collection).set(key, value);
    this.guards.wrote(collection, key, true);
    for (const l of this.listeners) l({ collection, key, value });
  }

  async delete(collection: CollectionName, key: string): Promise<void> {
    if (!this.table(collection).delete(key)) return;
    this.guards.wrote(collection, key, false);
    for (const l of this.listeners) l({ collection, key, value: undefined });
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
