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
import type { AddressRecord, BootTimeline, HostRecord, LeaseRecord, NodeRecord, SrvRecord } from '../cluster/types.ts';

export interface Collections {
  nodes: NodeRecord;
  hosts: HostRecord;
  srv: SrvRecord;
  leases: LeaseRecord;
  boots: BootTimeline;
  /** Addresses of nodes on proxy subnets, as bootherd saw them (by node name). */
  addresses: AddressRecord;
}

export type CollectionName = keyof Collections;

export const COLLECTIONS: readonly CollectionName[] = ['nodes', 'hosts', 'srv', 'leases', 'boots', 'addresses'];

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

/**
 * What a claim is guarded on: the revisions this head last saw (from
 * `claimRevisions`) of the address's lease and of the client's index entry
 * (which address the client holds); 0 means absent.
 */
export interface ClaimExpect {
  readonly address: number;
  readonly client: number;
}

/**
 * The address the client's entry named until this claim: guarded on
 * `revision` (the record the claim judged), and with `lease` (the offer
 * there, released) written in the same transaction. So a client holds one
 * address in the store at a time.
 */
export interface ClaimSupersede {
  readonly ip: string;
  readonly revision: number;
  readonly lease?: LeaseRecord;
}

/**
 * The outcome of a claim. When refused, what the store holds now (read in the
 * same transaction), so the caller can pick again or retry with these
 * revisions without waiting for its cache to catch up.
 */
export type ClaimOutcome =
  | { readonly claimed: true; readonly revision: number }
  | {
    readonly claimed: false;
    readonly address: { readonly lease: LeaseRecord | undefined; readonly revision: number };
    readonly client: { readonly ip: string | undefined; readonly revision: number };
  };

/**
 * The store cannot reach its backend (etcd down or cut off): writes fail
 * with this at once, reads keep answering from the cache. The HTTP API
 * answers 503 with its message.
 */
export class StoreUnavailableError extends Error {
  constructor(message: string, override readonly cause?: Error) {
    super(message);
    this.name = 'StoreUnavailableError';
  }
}

export interface Store {
  /**
   * Other processes (heads) write the same records: a record another head
   * can take must be claimed through `claim` (decided by the store), never
   * picked from the cache alone. False for the single-process stores.
   */
  readonly shared: boolean;
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
   * absent: what a guard compares against. A put still in flight does not
   * change it.
   */
  revision(collection: CollectionName, key: string): number;
  /**
   * Applies every op if every guard holds, atomically; resolves true when
   * committed, false when a guard failed (nothing written). Unlike `put`, the
   * outcome is decided by the store (etcd), never the local cache, so the ops
   * become visible only once committed.
   */
  transact(guards: readonly StoreGuard[], ops: readonly StoreOp[]): Promise<boolean>;
  /** The revisions a claim of `ip` for `clientKey` is guarded on, as this store last saw them. */
  claimRevisions(ip: string, clientKey: string): ClaimExpect;
  /** The address the client's index entry names, as this store last saw it (the entry `claimRevisions` guards). */
  claimedBy(clientKey: string): string | undefined;
  /**
   * Gives `lease.ip` to `clientKey`, in one transaction: only if the
   * address's lease and the client's index entry are still at `expect` (so of
   * two claims of one address, or two addresses for one client, exactly one
   * wins). Writes the lease and points the client's entry at the address.
   * Like `transact`, visible only once committed; decided by the store, never
   * by the cache. With `supersede`, also writes the client's previous record
   * (guarded on its revision too).
   */
  claim(clientKey: string, lease: LeaseRecord, expect: ClaimExpect, supersede?: ClaimSupersede): Promise<ClaimOutcome>;
  /** Called for every change, local or (for replicated stores) remote, after it is visible. */
  onChange(listener: ChangeListener): () => void;
  /** Flushes pending writes and releases files or connections. */
  close(): Promise<void>;
}
