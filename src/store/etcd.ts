/**
 * The etcd store: several heads share one cluster's records through etcd.
 *
 * Keys (docs/store.md), values JSON:
 *   <prefix>/<cluster>/nodes/<name>            hosts/<name>   srv/<name target port>
 *   <prefix>/<cluster>/leases/<ip>             leases-by-client/<client key> -> ip
 *   <prefix>/<cluster>/timelines/<node>
 *
 * Reads are synchronous from a cache: one Range at revision R, then a Watch
 * from R+1. Every change, local or remote, reaches `onChange` once. A put or
 * delete shows in the cache at once (an overlay over the committed value) and
 * goes to etcd in a batch: the writes made in one turn of the event loop share
 * one Txn (at most MAX_TXN_OPS ops, etcd's default limit), and resolve when it
 * is committed by the quorum. A failed write takes its overlay back. A key
 * with a write in flight waits for it before its next one goes, so writes to
 * one key commit in the order they were made.
 *
 * Guarded writes (transact, claim) are one Txn each and show only once
 * committed. When etcd is unreachable every write fails at once with
 * StoreUnavailableError; the watcher retries on its own and catches up (a
 * compacted revision makes it reload the whole prefix at one revision).
 */
import type { LeaseRecord } from '../cluster/types.ts';
import { EtcdCallError, EtcdClient, prefixEnd, type EtcdCompare, type EtcdEvent, type EtcdOp, type EtcdTxn, type EtcdTxnResult, type EtcdWatcher } from './etcd-client.ts';
import {
  COLLECTIONS, StoreUnavailableError,
  type ChangeListener, type ClaimExpect, type ClaimOutcome, type ClaimSupersede, type CollectionName, type Collections, type Store, type StoreGuard, type StoreOp,
} from './store.ts';

/** The directory of each collection under the cluster's prefix. */
export const ETCD_DIRS: { readonly [C in CollectionName]: string } = {
  nodes: 'nodes', hosts: 'hosts', srv: 'srv', leases: 'leases', boots: 'timelines', addresses: 'addresses',
};
/** Which address a client holds: the second key a claim is guarded on. */
export const CLIENT_INDEX_DIR = 'leases-by-client';

/** etcd's default --max-txn-ops. */
const MAX_TXN_OPS = 128;
/** Claims per batch Txn: etcd counts a nested txn's ops against --max-txn-ops less the outer ops. */
const MAX_CLAIMS_PER_TXN = 32;
/** Batch Txns of claims on their way at once: one fills while the other commits. */
const CLAIM_BATCHES_IN_FLIGHT = 2;
/** Keys read per Range page while loading. */
const LOAD_PAGE = 2000;

export interface EtcdStoreOptions {
  /** The client to use (shared with the election and the head's session); closed by the caller. */
  readonly client: EtcdClient;
  /** The cluster's name: its records live under <prefix>/<cluster>/. */
  readonly cluster: string;
  /** Default "/bootherd". */
  readonly prefix?: string;
}

export interface EtcdStoreStatus {
  /** The last call or the watch reached etcd. */
  readonly connected: boolean;
  /** The revision the cache has caught up with. */
  readonly revision: number;
  readonly lastError: string | undefined;
  /** Full reloads of the cache (after a compaction outran the watch). */
  readonly reloads: number;
  /** Records under the prefix whose value is not JSON; skipped. */
  readonly malformed: number;
  /** Claims sent, and the Txns they were batched into. */
  readonly claims: number;
  readonly claimTxns: number;
}

interface Committed { readonly value: unknown; readonly raw: string; readonly rev: number }
interface Overlay { readonly value: unknown; readonly raw: string | undefined; readonly seq: number }
interface QueuedWrite {
  readonly collection: CollectionName;
  readonly key: string;
  readonly full: string;
  raw: string | undefined;
  seq: number;
  readonly waiters: { resolve: () => void; reject: (e: Error) => void }[];
}

interface QueuedClaim {
  readonly txn: EtcdTxn;
  /** Every key the claim compares or writes. */
  readonly keys: readonly string[];
  readonly resolve: (r: EtcdTxnResult) => void;
  readonly reject: (e: Error) => void;
}

type Tables = { [C in CollectionName]: Map<string, Collections[C]> };
const emptyTables = (): Tables => ({ nodes: new Map(), hosts: new Map(), srv: new Map(), leases: new Map(), boots: new Map(), addresses: new Map() });
const emptyCommitted = (): Record<CollectionName, Map<string, Committed>> =>
  ({ nodes: new Map(), hosts: new Map(), srv: new Map(), leases: new Map(), boots: new Map(), addresses: new Map() });

export class EtcdStore implements Store {
  /** Every head writes the same records. */
  readonly shared = true;
  readonly root: string;
  private readonly client: EtcdClient;
  private readonly dirOf = new Map<string, CollectionName>();
  /** What get/values answer: committed values with this head's writes in flight over them. */
  private view: Tables = emptyTables();
  private committed = emptyCommitted();
  private clients = new Map<string, { readonly ip: string; readonly rev: number }>();
  /** Deleted keys' revisions, until the watch has passed them (a late response must not bring a key back). */
  private tombstones = new Map<string, number>();
  private overlays = new Map<string, Overlay>();
  private listeners = new Set<ChangeListener>();
  private queue = new Map<string, QueuedWrite>();
  private inflightKeys = new Set<string>();
  private inflight = new Set<Promise<void>>();
  private flushScheduled = false;
  private claimQueue: QueuedClaim[] = [];
  private claimBatches = 0;
  /** Claims sent and the Txns they went in (status: how well claims batch). */
  private claimsSent = 0;
  private claimTxns = 0;
  private seq = 0;
  private watcher: EtcdWatcher | undefined;
  /** The revision every watch event up to which has been applied. */
  private watched = 0;
  private connected = false;
  private lastError: string | undefined;
  private reloads = 0;
  private malformed = 0;
  private closed = false;
  private reloading: Promise<void> | undefined;

  /** The etcd lease this head's offers hang off (its session's), once `offersOn` is called. */
  private offerLease: (() => string | undefined) | undefined;

  constructor(options: EtcdStoreOptions) {
    if (!/^[A-Za-z0-9._-]+$/.test(options.cluster)) throw new Error(`etcd store: cluster name "${options.cluster}" must be letters, digits, ".", "_" or "-" (it is part of every key)`);
    this.client = options.client;
    this.root = `${(options.prefix ?? '/bootherd').replace(/\/+$/, '')}/${options.cluster}/`;
    for (const c of COLLECTIONS) this.dirOf.set(ETCD_DIRS[c], c);
  }

  /**
   * Offers (lease records in state `offered`) hang off this head's session
   * from now on: their keys, and the client index entries they write, are
   * put with the session's etcd lease, so a head that dies or is cut off
   * takes its offers with it within the session's TTL. Without a live
   * session (undefined) an offer is not claimed at all: a head that lost its
   * session makes no new claims.
   */
  offersOn(lease: () => string | undefined): void {
    this.offerLease = lease;
  }

  /** The etcd key of a record. */
  keyOf(collection: CollectionName, key: string): string {
    return `${this.root}${ETCD_DIRS[collection]}/${key}`;
  }

  private clientKeyOf(clientKey: string): string {
    return `${this.root}${CLIENT_INDEX_DIR}/${clientKey}`;
  }

  async open(): Promise<void> {
    await this.load(false);
    this.startWatch();
  }

  status(): EtcdStoreStatus {
    return { connected: this.connected, revision: this.watched, lastError: this.lastError, reloads: this.reloads, malformed: this.malformed, claims: this.claimsSent, claimTxns: this.claimTxns };
  }

  get<C extends CollectionName>(collection: C, key: string): Collections[C] | undefined {
    return this.view[collection].get(key);
  }

  values<C extends CollectionName>(collection: C): IterableIterator<Collections[C]> {
    return this.view[collection].values();
  }

  size(collection: CollectionName): number {
    return this.view[collection].size;
  }

  revision(collection: CollectionName, key: string): number {
    return this.committed[collection].get(key)?.rev ?? 0;
  }

  claimRevisions(ip: string, clientKey: string): ClaimExpect {
    return { address: this.revision('leases', ip), client: this.clients.get(clientKey)?.rev ?? 0 };
  }

  claimedBy(clientKey: string): string | undefined {
    return this.clients.get(clientKey)?.ip;
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  put<C extends CollectionName>(collection: C, key: string, value: Collections[C]): Promise<void> {
    return this.write(collection, key, value, JSON.stringify(value));
  }

  delete(collection: CollectionName, key: string): Promise<void> {
    if (!this.view[collection].has(key)) return Promise.resolve();
    return this.write(collection, key, undefined, undefined);
  }

  async transact(guards: readonly StoreGuard[], ops: readonly StoreOp[]): Promise<boolean> {
    const compare: EtcdCompare[] = guards.map((g) => ('fence' in g
      ? { key: Buffer.from(g.fence.key), target: 'CREATE', createRevision: g.fence.createRevision }
      : { key: Buffer.from(this.keyOf(g.collection, g.key)), target: 'MOD', modRevision: g.revision }));
    const raws = ops.map((o) => (o.op === 'put' ? JSON.stringify(o.value) : undefined));
    const success: EtcdOp[] = ops.map((o, i) => {
      const key = Buffer.from(this.keyOf(o.collection, o.key));
      return raws[i] === undefined ? { deleteKey: key } : { put: { key, value: Buffer.from(raws[i]!) } };
    });
    const r = await this.call(() => this.client.txn({ compare, success }));
    if (r.succeeded) ops.forEach((o, i) => this.applyCommitted(o.collection, o.key, raws[i], r.revision));
    return r.succeeded;
  }

  async claim(clientKey: string, lease: LeaseRecord, expect: ClaimExpect, supersede?: ClaimSupersede): Promise<ClaimOutcome> {
    const leaseFull = this.keyOf('leases', lease.ip);
    const indexFull = this.clientKeyOf(clientKey);
    const oldFull = supersede ? this.keyOf('leases', supersede.ip) : undefined;
    const leaseKey = Buffer.from(leaseFull);
    const indexKey = Buffer.from(indexFull);
    const raw = JSON.stringify(lease);
    const oldKey = oldFull ? Buffer.from(oldFull) : undefined;
    const oldRaw = supersede?.lease ? JSON.stringify(supersede.lease) : undefined;
    let etcdLease: string | undefined;
    if (lease.state === 'offered' && this.offerLease) {
      etcdLease = this.offerLease();
      if (etcdLease === undefined) throw new StoreUnavailableError('this head has no etcd session (its lease expired or etcd is unreachable): it makes no offers until it registers again');
    }
    const r = await this.claimTxn({
      compare: [
        { key: leaseKey, target: 'MOD', modRevision: expect.address },
        { key: indexKey, target: 'MOD', modRevision: expect.client },
        ...(oldKey ? [{ key: oldKey, target: 'MOD' as const, modRevision: supersede!.revision }] : []),
      ],
      success: [
        { put: { key: leaseKey, value: Buffer.from(raw), lease: etcdLease } }, { put: { key: indexKey, value: Buffer.from(lease.ip), lease: etcdLease } },
        ...(oldKey && oldRaw ? [{ put: { key: oldKey, value: Buffer.from(oldRaw) } }] : []),
      ],
      failure: [{ range: { key: leaseKey } }, { range: { key: indexKey } }, ...(oldKey ? [{ range: { key: oldKey } }] : [])],
    }, oldFull ? [leaseFull, indexFull, oldFull] : [leaseFull, indexFull]);
    if (r.succeeded) {
      if (supersede && oldRaw) this.applyCommitted('leases', supersede.ip, oldRaw, r.revision);
      this.applyCommitted('leases', lease.ip, raw, r.revision);
      this.applyClient(clientKey, lease.ip, r.revision);
      return { claimed: true, revision: r.revision };
    }
    const kvsOf = (i: number) => { const o = r.responses[i]; return o && 'kvs' in o ? o.kvs : []; };
    const leaseKv = kvsOf(0)[0];
    const indexKv = kvsOf(1)[0];
    let current: LeaseRecord | undefined;
    if (leaseKv) {
      current = this.parse(leaseKv.value.toString()) as LeaseRecord | undefined;
      this.applyCommitted('leases', lease.ip, leaseKv.value.toString(), leaseKv.modRevision);
    }
    if (indexKv) this.applyClient(clientKey, indexKv.value.toString(), indexKv.modRevision);
    const oldKv = kvsOf(2)[0];
    if (supersede && oldKv) this.applyCommitted('leases', supersede.ip, oldKv.value.toString(), oldKv.modRevision);
    return {
      claimed: false,
      address: { lease: current, revision: leaseKv?.modRevision ?? 0 },
      client: { ip: indexKv?.value.toString(), revision: indexKv?.modRevision ?? 0 },
    };
  }

  /**
   * Claims made while others are on their way share one Txn: each claim is a
   * nested txn with its own guards, so one refused claim refuses only itself.
   * At most CLAIM_BATCHES_IN_FLIGHT such Txns are in flight; claims made
   * meanwhile wait for the next. etcd evaluates every nested guard before
   * applying any write and refuses a Txn that writes one key twice, so a
   * claim touching a key already in the batch waits for the next one: then
   * deciding the claims together is the same as deciding them in turn.
   */
  private claimTxn(txn: EtcdTxn, keys: readonly string[]): Promise<EtcdTxnResult> {
    if (this.closed) return Promise.reject(new Error('etcd store is closed'));
    return new Promise((resolve, reject) => {
      this.claimQueue.push({ txn, keys, resolve, reject });
      if (this.claimBatches < CLAIM_BATCHES_IN_FLIGHT) this.sendClaims();
    });
  }

  private sendClaims(): void {
    while (this.claimBatches < CLAIM_BATCHES_IN_FLIGHT && this.claimQueue.length) {
      const batch: QueuedClaim[] = [];
      const keys = new Set<string>();
      const waiting: QueuedClaim[] = [];
      for (const c of this.claimQueue) {
        if (batch.length === MAX_CLAIMS_PER_TXN || c.keys.some((k) => keys.has(k))) { waiting.push(c); continue; }
        for (const k of c.keys) keys.add(k);
        batch.push(c);
      }
      this.claimQueue = waiting;
      this.claimBatches++;
      this.claimsSent += batch.length;
      this.claimTxns++;
      const done = this.call(() => this.client.txn({ compare: [], success: batch.map((c) => ({ txn: c.txn })) })).then(
        (r) => batch.forEach((c, i) => {
          const nested = r.responses[i];
          if (nested && 'txn' in nested) c.resolve(nested.txn);
          else c.reject(new Error('etcd answered a batch of claims without a result for each'));
        }),
        (e: Error) => { for (const c of batch) c.reject(e); },
      ).finally(() => {
        this.claimBatches--;
        this.inflight.delete(done);
        this.sendClaims();
      });
      this.inflight.add(done);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
    this.closed = true;
    this.watcher?.stop();
  }

  // --- writes ---

  private write(collection: CollectionName, key: string, value: unknown, raw: string | undefined): Promise<void> {
    if (this.closed) return Promise.reject(new Error('etcd store is closed'));
    const full = this.keyOf(collection, key);
    const seq = ++this.seq;
    this.overlays.set(full, { value, raw, seq });
    this.show(collection, key, value);
    return new Promise((resolve, reject) => {
      const queued = this.queue.get(full);
      if (queued) {
        // A later write of a key not yet sent replaces it; both callers learn the outcome.
        queued.raw = raw;
        queued.seq = seq;
        queued.waiters.push({ resolve, reject });
      } else {
        this.queue.set(full, { collection, key, full, raw, seq, waiters: [{ resolve, reject }] });
      }
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => { this.flushScheduled = false; this.flush(); });
  }

  /** Sends every queued write whose key has none in flight, MAX_TXN_OPS to a Txn. */
  private flush(): void {
    let batch: QueuedWrite[] = [];
    for (const w of this.queue.values()) {
      if (this.inflightKeys.has(w.full)) continue;
      this.queue.delete(w.full);
      this.inflightKeys.add(w.full);
      batch.push(w);
      if (batch.length === MAX_TXN_OPS) { this.send(batch); batch = []; }
    }
    if (batch.length) this.send(batch);
  }

  private send(batch: QueuedWrite[]): void {
    const success: EtcdOp[] = batch.map((w) => (w.raw === undefined
      ? { deleteKey: Buffer.from(w.full) }
      : { put: { key: Buffer.from(w.full), value: Buffer.from(w.raw) } }));
    const done = this.call(() => this.client.txn({ compare: [], success })).then(
      (r) => {
        for (const w of batch) {
          this.applyCommitted(w.collection, w.key, w.raw, r.revision);
          this.settle(w);
          for (const x of w.waiters) x.resolve();
        }
      },
      (e: Error) => {
        for (const w of batch) {
          this.settle(w);
          for (const x of w.waiters) x.reject(e);
        }
      },
    ).finally(() => {
      for (const w of batch) this.inflightKeys.delete(w.full);
      this.inflight.delete(done);
      if (this.queue.size) this.scheduleFlush();
    });
    this.inflight.add(done);
  }

  /** A write is over (committed or failed): its overlay goes, unless a later write of the key made a newer one. */
  private settle(w: QueuedWrite): void {
    const o = this.overlays.get(w.full);
    if (!o || o.seq !== w.seq) return;
    this.overlays.delete(w.full);
    const c = this.committed[w.collection].get(w.key);
    if (c?.raw !== o.raw) this.show(w.collection, w.key, c?.value);
  }

  /** Runs one etcd call; an unreachable etcd becomes StoreUnavailableError, naming it. */
  private async call<T>(f: () => Promise<T>): Promise<T> {
    try {
      const r = await f();
      this.connected = true;
      return r;
    } catch (e) {
      if (e instanceof EtcdCallError) {
        this.lastError = e.message;
        if (e.unreachable) {
          this.connected = false;
          throw new StoreUnavailableError(`etcd is unreachable (${this.client.endpoints.join(', ')}): the change was not saved; reads still answer from this head's cache. ${e.message}`, e);
        }
        throw new Error(`etcd refused the write: ${e.message}`);
      }
      throw e;
    }
  }

  // --- the cache ---

  private show(collection: CollectionName, key: string, value: unknown): void {
    const table = this.view[collection] as Map<string, unknown>;
    if (value === undefined) {
      if (!table.delete(key)) return;
    } else {
      table.set(key, value);
    }
    const change = { collection, key, value: value as Collections[CollectionName] | undefined };
    for (const l of this.listeners) l(change);
  }

  private parse(raw: string): unknown {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      this.malformed++;
      return undefined;
    }
  }

  /**
   * Takes in a committed value (raw undefined: deleted) at `rev`, if newer
   * than what the cache holds for the key; a response older than the watch
   * position is already in the cache through the watch.
   */
  private applyCommitted(collection: CollectionName, key: string, raw: string | undefined, rev: number): void {
    if (rev <= this.watched && !this.inWatchBatch) return;
    const full = this.keyOf(collection, key);
    const table = this.committed[collection];
    const cur = table.get(key);
    if (rev <= (cur?.rev ?? this.tombstones.get(full) ?? 0)) return;
    let value: unknown;
    if (raw === undefined) {
      table.delete(key);
      this.tombstones.set(full, rev);
    } else {
      value = this.parse(raw);
      if (value === undefined) return;
      table.set(key, { value, raw, rev });
      this.tombstones.delete(full);
    }
    if (!this.overlays.has(full) && cur?.raw !== raw) this.show(collection, key, value);
  }

  private applyClient(clientKey: string, ip: string | undefined, rev: number): void {
    if (rev <= this.watched && !this.inWatchBatch) return;
    const cur = this.clients.get(clientKey);
    const full = this.clientKeyOf(clientKey);
    if (rev <= (cur?.rev ?? this.tombstones.get(full) ?? 0)) return;
    if (ip === undefined) { this.clients.delete(clientKey); this.tombstones.set(full, rev); } else { this.clients.set(clientKey, { ip, rev }); this.tombstones.delete(full); }
  }

  private inWatchBatch = false;

  /** Splits a key under the root into its directory and record key. */
  private locate(key: Buffer): { dir: string; rest: string } | undefined {
    const k = key.toString();
    if (!k.startsWith(this.root)) return undefined;
    const slash = k.indexOf('/', this.root.length);
    if (slash < 0) return undefined;
    return { dir: k.slice(this.root.length, slash), rest: k.slice(slash + 1) };
  }

  private applyEvent(e: EtcdEvent): void {
    const at = this.locate(e.kv.key);
    if (!at) { this.malformed++; return; }
    const raw = e.type === 'PUT' ? e.kv.value.toString() : undefined;
    if (at.dir === CLIENT_INDEX_DIR) { this.applyClient(at.rest, raw, e.kv.modRevision); return; }
    // Other directories under the root (election keys, say) are not records.
    const c = this.dirOf.get(at.dir);
    if (!c) return;
    this.applyCommitted(c, at.rest, raw, e.kv.modRevision);
  }

  private onEvents(events: readonly EtcdEvent[], revision: number): void {
    this.connected = true;
    this.inWatchBatch = true;
    try {
      for (const e of events) this.applyEvent(e);
    } finally {
      this.inWatchBatch = false;
    }
    this.watched = Math.max(this.watched, revision);
    for (const [k, rev] of this.tombstones) if (rev <= this.watched) this.tombstones.delete(k);
  }

  private startWatch(): void {
    if (this.closed) return;
    const root = Buffer.from(this.root);
    this.watcher = this.client.watch({ key: root, rangeEnd: prefixEnd(root), startRevision: this.watched + 1 }, {
      onEvents: (events, revision) => this.onEvents(events, revision),
      onCompacted: () => { void this.reload(); },
      onError: (e) => { this.connected = false; this.lastError = e.message; },
      onSynced: () => { this.connected = true; },
    });
  }

  /** The watch fell behind a compaction: read everything again at one revision, then watch from there. */
  private reload(): Promise<void> {
    this.reloading ??= (async () => {
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          await this.load(true);
          this.reloads++;
          this.startWatch();
          return;
        } catch (e) {
          this.lastError = (e as Error).message;
          await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** attempt, 2000)));
        }
      }
    })().finally(() => { this.reloading = undefined; });
    return this.reloading;
  }

  /**
   * Reads the whole prefix at one revision (in pages). On a reload, every
   * record that differs from the cache is changed through the same path as a
   * watch event, and every record gone is deleted.
   */
  private async load(reload: boolean): Promise<void> {
    const root = Buffer.from(this.root);
    const end = prefixEnd(root);
    const kvs: EtcdEvent[] = [];
    let from = root;
    let revision = 0;
    for (;;) {
      const page = await this.call(() => this.client.range(from, end, { revision, limit: LOAD_PAGE }));
      revision = page.revision;
      for (const kv of page.kvs) kvs.push({ type: 'PUT', kv });
      if (!page.more || !page.kvs.length) break;
      from = Buffer.concat([page.kvs[page.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    const seen = new Set<string>();
    for (const e of kvs) seen.add(e.kv.key.toString());
    this.inWatchBatch = true;
    try {
      if (reload) {
        // Keys the cache holds that are gone now: deleted at the load's revision.
        for (const c of COLLECTIONS) {
          for (const key of [...this.committed[c].keys()]) if (!seen.has(this.keyOf(c, key))) this.applyCommitted(c, key, undefined, revision);
        }
        for (const ck of [...this.clients.keys()]) if (!seen.has(this.clientKeyOf(ck))) this.applyClient(ck, undefined, revision);
      }
      for (const e of kvs) this.applyEvent(e);
    } finally {
      this.inWatchBatch = false;
    }
    this.watched = revision;
    this.tombstones.clear();
  }
}
