/**
 * The store: every record that outlives a process (API-added nodes, host
 * mappings, SRV records, leases, boot timelines). One narrow interface, two
 * implementations: the embedded journal in a state directory (a single head,
 * the default) and etcd (several heads, src/store/etcd.ts).
 *
 * Reads are synchronous from memory: DHCP and DNS consult the store per packet
 * and must not wait. Writes resolve only once the record is durable, so a
 * service can hold its reply (a DHCP ACK) until then.
 */
import type { BootTimeline, HostRecord, LeaseRecord, NodeRecord, SrvRecord } from '../cluster/types.ts';

export interface Collections {
  nodes: NodeRecord;
  hosts: HostRecord;
  srv: SrvRecord;
  leases: LeaseRecord;
  boots: BootTimeline;
}

export type CollectionName = keyof Collections;

export const COLLECTIONS: readonly CollectionName[] = ['nodes', 'hosts', 'srv', 'leases', 'boots'];

export interface StoreChange<C extends CollectionName = CollectionName> {
  readonly collection: C;
  readonly key: string;
  /** The new value, or undefined when the record was deleted. */
  readonly value: Collections[C] | undefined;
}

export type ChangeListener = (change: StoreChange) => void;

/** One write of a transaction. */
export type StoreOp =
  | { readonly op: 'put'; readonly collection: CollectionName; readonly key: string; readonly value: Collections[CollectionName] }
  | { readonly op: 'delete'; readonly collection: CollectionName; readonly key: string };

/**
 * A condition of a transaction:
 * - a record's revision (from `revision()`) must still be the one given; 0 means the record must be absent;
 * - a leader fence (from an election) must still hold: the leader's key still exists with that create revision.
 * A single-process store is always its own leader, so it only checks record revisions.
 */
export type StoreGuard =
  | { readonly collection: CollectionName; readonly key: string; readonly revision: number }
  | { readonly fence: LeaderFence };

export interface LeaderFence {
  /** The election key (an etcd key, outside the collections). */
  readonly key: string;
  readonly createRevision: number;
}

export interface Store {
  /** Loads the state; call once before anything else. */
  open(): Promise<void>;
  get<C extends CollectionName>(collection: C, key: string): Collections[C] | undefined;
  values<C extends CollectionName>(collection: C): IterableIterator<Collections[C]>;
  size(collection: CollectionName): number;
  /**
   * Visible to `get` at once; the promise resolves when the write is durable
   * (etcd: committed by the quorum). If it rejects, the record goes back to
   * what the store last knew, with a change event.
   */
  put<C extends CollectionName>(collection: C, key: string, value: Collections[C]): Promise<void>;
  delete(collection: CollectionName, key: string): Promise<void>;
  /**
   * The revision of the record as this store last saw it committed, 0 when
   * absent: what a guard compares against. It only grows for a key; a put
   * still in flight does not change it.
   */
  revision(collection: CollectionName, key: string): number;
  /**
   * Applies every op if every guard holds, atomically; resolves true when
   * committed, false when a guard failed (nothing written). Unlike `put`, the
   * outcome is decided by the store (etcd), never the local cache, so the ops
   * become visible only once committed. A claim (an address to one client) is
   * one transact guarded on the address's and the client's records.
   */
  transact(guards: readonly StoreGuard[], ops: readonly StoreOp[]): Promise<boolean>;
  /** Called for every change, local or (for replicated stores) remote, after it is visible. */
  onChange(listener: ChangeListener): () => void;
  /** Flushes pending writes and releases files or connections. */
  close(): Promise<void>;
}
