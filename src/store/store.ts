/**
 * The store: every record that outlives a process (API-added nodes, host
 * mappings, SRV records, leases, boot timelines). One narrow interface, two
 * implementations: the embedded journal in a state directory (a single head,
 * the default) and etcd (several heads; same interface, later).
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

export interface Store {
  /** Loads the state; call once before anything else. */
  open(): Promise<void>;
  get<C extends CollectionName>(collection: C, key: string): Collections[C] | undefined;
  values<C extends CollectionName>(collection: C): IterableIterator<Collections[C]>;
  size(collection: CollectionName): number;
  /** Visible to `get` at once; the promise resolves when the write is durable. */
  put<C extends CollectionName>(collection: C, key: string, value: Collections[C]): Promise<void>;
  delete(collection: CollectionName, key: string): Promise<void>;
  /** Called for every change, local or (for replicated stores) remote, after it is visible. */
  onChange(listener: ChangeListener): () => void;
  /** Flushes pending writes and releases files or connections. */
  close(): Promise<void>;
}
