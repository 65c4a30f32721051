/**
 * A store that keeps everything in memory and forgets it on exit: for dry runs
 * (`bootherd explain`) and unit tests. Same interface as the others.
 */
import type { ChangeListener, CollectionName, Collections, Store, StoreGuard, StoreOp } from './store.ts';

export class MemoryStore implements Store {
  private tables = new Map<CollectionName, Map<string, unknown>>();
  private listeners = new Set<ChangeListener>();
  /** Per-record revisions for guards: one counter for the whole store, as etcd's. */
  private revisions = new Map<string, number>();
  private lastRevision = 0;

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
    return this.revisions.get(`${collection}/${key}`) ?? 0;
  }

  async transact(guards: readonly StoreGuard[], ops: readonly StoreOp[]): Promise<boolean> {
    for (const g of guards) if ('collection' in g && this.revision(g.collection, g.key) !== g.revision) return false;
    await Promise.all(ops.map((o) => (o.op === 'put' ? this.put(o.collection, o.key, o.value) : this.delete(o.collection, o.key))));
    return true;
  }

  async put<C extends CollectionName>(collection: C, key: string, value: Collections[C]): Promise<void> {
    this.table(collection).set(key, value);
    this.revisions.set(`${collection}/${key}`, ++this.lastRevision);
    for (const l of this.listeners) l({ collection, key, value });
  }

  async delete(collection: CollectionName, key: string): Promise<void> {
    if (!this.table(collection).delete(key)) return;
    this.revisions.delete(`${collection}/${key}`);
    this.lastRevision++;
    for (const l of this.listeners) l({ collection, key, value: undefined });
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
