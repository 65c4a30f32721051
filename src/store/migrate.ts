/**
 * `bootherd store migrate`: copies an embedded state directory (one head)
 * into the store of several heads, key for key and record for record, so
 * leases keep their addresses and expiry, API-added nodes their names and
 * boot timelines their history. The target must be empty (a second run would
 * otherwise put an old lease over a newer one), unless told to overwrite.
 */
import { COLLECTIONS, type CollectionName, type Collections, type Store, type StoreOp } from './store.ts';

/** What a migration reads from: the embedded store's records with their keys. */
export interface StoreSource {
  entries<C extends CollectionName>(collection: C): IterableIterator<[string, Collections[C]]>;
}

export type MigrationCounts = Record<CollectionName, number>;

/** Records a transaction at most (etcd refuses more than --max-txn-ops, 128 by default). */
const BATCH = 100;

export class MigrationRefused extends Error {
  override readonly name = 'MigrationRefused';
}

export async function migrateStore(from: StoreSource, to: Store, opts: { overwrite?: boolean } = {}): Promise<MigrationCounts> {
  const counts = { nodes: 0, hosts: 0, srv: 0, leases: 0, boots: 0, addresses: 0 };
  if (!opts.overwrite) {
    const held = COLLECTIONS.filter((c) => to.size(c) > 0).map((c) => `${to.size(c)} ${c}`);
    if (held.length) throw new MigrationRefused(`the target store already holds records (${held.join(', ')}); migrate into an empty one, or pass --overwrite to put the state directory's records over them`);
  }
  let batch: StoreOp[] = [];
  const flush = async () => {
    if (!batch.length) return;
    // Without --overwrite each record is written only if still absent, so a head that wrote meanwhile is not overwritten.
    const guards = opts.overwrite ? [] : batch.map((o) => ({ collection: o.collection, key: o.key, revision: 0 }));
    if (!(await to.transact(guards, batch))) throw new MigrationRefused(`a record of this batch appeared in the target store while migrating (${batch[0]!.collection} ${batch[0]!.key} or a later one); stop every head's bootherd writes, or pass --overwrite`);
    batch = [];
  };
  for (const c of COLLECTIONS) {
    for (const [key, value] of from.entries(c)) {
      batch.push({ op: 'put', collection: c, key, value });
      counts[c]++;
      if (batch.length >= BATCH) await flush();
    }
  }
  await flush();
  return counts;
}
