/**
 * A small etcd v3 client over @grpc/grpc-js and etcd's own protos
 * (src/store/etcd-proto, the API of etcd 3.4+ without the gateway and gogoproto
 * annotations): just the calls the store and the election use — Range, Txn,
 * Compact, Watch, LeaseGrant, LeaseKeepAlive, LeaseRevoke. docs/store.md says
 * why this and not the etcd3 package or the JSON gateway.
 *
 * One channel per endpoint; calls go to the current one and, when it fails
 * with UNAVAILABLE or a deadline, the next call goes to the next endpoint, so
 * a stopped member (sockets open, nothing answering) is left within one
 * deadline. Every unary call has a deadline: an unreachable etcd fails fast.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const PROTO_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'etcd-proto');

/** A key-value as etcd returns it; revisions as numbers (they stay far below 2^53). */
export interface EtcdKeyValue {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  /** The lease id ("0": none); int64 as text, since ids go beyond 2^53. */
  readonly lease: string;
}

export interface EtcdEvent {
  readonly type: 'PUT' | 'DELETE';
  readonly kv: EtcdKeyValue;
}

export type EtcdCompare =
  | { readonly key: Buffer; readonly target: 'MOD'; readonly modRevision: number }
  | { readonly key: Buffer; readonly target: 'CREATE'; readonly createRevision: number };

export type EtcdOp =
  | { readonly put: { readonly key: Buffer; readonly value: Buffer; readonly lease?: string } }
  | { readonly deleteKey: Buffer }
  | { readonly range: { readonly key: Buffer; readonly rangeEnd?: Buffer } }
  | { readonly txn: EtcdTxn };

export interface EtcdTxn {
  readonly compare: readonly EtcdCompare[];
  readonly success: readonly EtcdOp[];
  readonly failure?: readonly EtcdOp[];
}

export interface EtcdTxnResult {
  readonly revision: number;
  readonly succeeded: boolean;
  /** One per op of the branch taken; a nested txn's own result, a range's kvs. */
  readonly responses: readonly EtcdOpResult[];
}

export type EtcdOpResult = { readonly txn: EtcdTxnResult } | { readonly kvs: readonly EtcdKeyValue[] } | Record<string, never>;

/** An error from etcd or the transport, with the gRPC status code. */
export class EtcdCallError extends Error {
  constructor(message: string, readonly code: grpc.status, readonly endpoint: string) {
    super(message);
    this.name = 'EtcdCallError';
  }
  /** The cluster could not be reached or did not answer in time (as opposed to a refused request). */
  get unreachable(): boolean {
    return this.code === grpc.status.UNAVAILABLE || this.code === grpc.status.DEADLINE_EXCEEDED || this.code === grpc.status.CANCELLED;
  }
}

// The wire shapes proto-loader gives (keepCase, longs as strings, oneofs named).
interface WireKv { key: Buffer; value: Buffer; create_revision: string; mod_revision: string; version: string; lease: string }
interface WireHeader { revision: string }
interface WireResponseOp { response: string; response_range?: { kvs: WireKv[] }; response_txn?: WireTxnResponse }
interface WireTxnResponse { header: WireHeader; succeeded: boolean; responses: WireResponseOp[] }
interface WireRangeResponse { header: WireHeader; kvs: WireKv[]; more: boolean; count: string }
export interface WireWatchResponse {
  header: WireHeader; watch_id: string; created: boolean; canceled: boolean;
  compact_revision: string; cancel_reason: string; events: { type: 'PUT' | 'DELETE'; kv: WireKv }[];
}
interface WireLeaseKeepAliveResponse { header: WireHeader; ID: string; TTL: string }

type Unary<Req, Res> = (req: Req, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => grpc.ClientUnaryCall;
interface KVClient extends grpc.Client {
  Range: Unary<object, WireRangeResponse>;
  Txn: Unary<object, WireTxnResponse>;
  Compact: Unary<object, { header: WireHeader }>;
}
interface WatchClient extends grpc.Client { Watch(meta: grpc.Metadata): grpc.ClientDuplexStream<object, WireWatchResponse> }
interface LeaseClient extends grpc.Client {
  LeaseGrant: Unary<object, { ID: string; TTL: string; error: string }>;
  LeaseRevoke: Unary<object, object>;
  LeaseKeepAlive(meta: grpc.Metadata): grpc.ClientDuplexStream<object, WireLeaseKeepAliveResponse>;
}
interface MaintenanceClient extends grpc.Client {
  Status: Unary<object, { header: WireHeader & { member_id: string }; version: string; dbSize: string; leader: string; raftIndex: string; raftTerm: string; errors: string[]; isLearner: boolean }>;
}
interface ClusterClient extends grpc.Client {
  MemberList: Unary<object, { members: { ID: string; name: string; peerURLs: string[]; clientURLs: string[]; isLearner: boolean }[] }>;
}
type Ctor<T> = new (target: string, creds: grpc.ChannelCredentials, opts: grpc.ClientOptions) => T;
interface EtcdServices {
  KV: Ctor<KVClient>;
  Watch: Ctor<WatchClient>;
  Lease: Ctor<LeaseClient>;
  Maintenance: Ctor<MaintenanceClient>;
  Cluster: Ctor<ClusterClient>;
}

let services: EtcdServices | undefined;
function loadServices(): EtcdServices {
  if (!services) {
    const def = loadSync(path.join(PROTO_DIR, 'rpc.proto'), {
      keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR],
    });
    services = (grpc.loadPackageDefinition(def) as unknown as { etcdserverpb: EtcdServices }).etcdserverpb;
  }
  return services;
}

const kvOf = (w: WireKv): EtcdKeyValue => ({
  key: w.key, value: w.value, createRevision: Number(w.create_revision), modRevision: Number(w.mod_revision), version: Number(w.version), lease: w.lease,
});

function opToWire(op: EtcdOp): object {
  if ('put' in op) return { request_put: { key: op.put.key, value: op.put.value, lease: op.put.lease ?? '0' } };
  if ('deleteKey' in op) return { request_delete_range: { key: op.deleteKey } };
  if ('range' in op) return { request_range: { key: op.range.key, range_end: op.range.rangeEnd?.length ? op.range.rangeEnd : undefined } };
  return { request_txn: txnToWire(op.txn) };
}

function txnToWire(t: EtcdTxn): object {
  return {
    compare: t.compare.map((c) => c.target === 'MOD'
      ? { result: 'EQUAL', target: 'MOD', key: c.key, mod_revision: c.modRevision }
      : { result: 'EQUAL', target: 'CREATE', key: c.key, create_revision: c.createRevision }),
    success: t.success.map(opToWire),
    failure: (t.failure ?? []).map(opToWire),
  };
}

/** A nested txn's response has no header of its own: it is committed at the outer one's revision. */
function txnFromWire(r: WireTxnResponse, outerRevision?: number): EtcdTxnResult {
  const revision = outerRevision ?? Number(r.header.revision);
  return {
    revision,
    succeeded: r.succeeded,
    responses: r.responses.map((o): EtcdOpResult => {
      if (o.response === 'response_txn' && o.response_txn) return { txn: txnFromWire(o.response_txn, revision) };
      if (o.response === 'response_range' && o.response_range) return { kvs: o.response_range.kvs.map(kvOf) };
      return {};
    }),
  };
}

/** The end of a prefix range: the prefix with its last byte incremented. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) { end[i]!++; return end.subarray(0, i + 1); }
  }
  return Buffer.from([0]);
}

/** `http://host:port` or `host:port` as a gRPC target. */
function targetOf(endpoint: string): string {
  return endpoint.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

export interface EtcdClientOptions {
  readonly endpoints: readonly string[];
  /** Deadline of every unary call, in ms (default 3000). */
  readonly requestTimeoutMs?: number;
}

interface Channel { endpoint: string; kv: KVClient; watch: WatchClient; lease: LeaseClient; maintenance: MaintenanceClient; cluster: ClusterClient }

export class EtcdClient {
  readonly endpoints: readonly string[];
  readonly requestTimeoutMs: number;
  private readonly channels: Channel[];
  private current = 0;
  private closed = false;

  constructor(options: EtcdClientOptions) {
    if (!options.endpoints.length) throw new Error('etcd: no endpoints given; list at least one, like http://127.0.0.1:2379');
    this.endpoints = options.endpoints;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 3000;
    const s = loadServices();
    const creds = grpc.credentials.createInsecure();
    // Keepalive pings find a member that stopped answering on an open socket
    // (etcd refuses pings more often than every 5 s: --grpc-keepalive-min-time).
    const opts: grpc.ClientOptions = {
      'grpc.keepalive_time_ms': 5000,
      'grpc.keepalive_timeout_ms': 3000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': -1,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2000,
    };
    this.channels = options.endpoints.map((endpoint) => {
      const target = targetOf(endpoint);
      // One subchannel for all three services of an endpoint.
      const kv = new s.KV(target, creds, opts);
      const channelOverride = kv.getChannel();
      return {
        endpoint,
        kv,
        watch: new s.Watch(target, creds, { ...opts, channelOverride }),
        lease: new s.Lease(target, creds, { ...opts, channelOverride }),
        maintenance: new s.Maintenance(target, creds, { ...opts, channelOverride }),
        cluster: new s.Cluster(target, creds, { ...opts, channelOverride }),
      };
    });
  }

  /** The endpoint calls go to now. */
  get endpoint(): string {
    return this.channels[this.current]!.endpoint;
  }

  /** Moves later calls to the next endpoint (after a failure on this one). */
  private failover(from: Channel): void {
    if (this.channels[this.current] === from) this.current = (this.current + 1) % this.channels.length;
  }

  private unary<Req extends object, Res>(pick: (c: Channel) => Unary<Req, Res>, name: string, req: Req, ch = this.channels[this.current]!): Promise<Res> {
    if (this.closed) return Promise.reject(new EtcdCallError('etcd client is closed', grpc.status.CANCELLED, this.endpoint));
    return new Promise((resolve, reject) => {
      pick(ch)(req, new grpc.Metadata(), { deadline: Date.now() + this.requestTimeoutMs }, (e, r) => {
        if (!e) return resolve(r);
        const err = new EtcdCallError(`etcd ${name} at ${ch.endpoint}: ${e.details || e.message}`, e.code, ch.endpoint);
        if (err.unreachable) this.failover(ch);
        reject(err);
      });
    });
  }

  /** Keys in [key, rangeEnd) (rangeEnd empty: just key), at `revision` (0: the newest). */
  async range(key: Buffer, rangeEnd: Buffer, opts: EtcdRangeOptions = {}): Promise<EtcdRangeResult> {
    // An empty range_end must be left out, not sent empty: etcd reads a present empty one as "to the end".
    const r = await this.unary((c) => c.kv.Range.bind(c.kv), 'Range', {
      key, range_end: rangeEnd.length ? rangeEnd : undefined, revision: opts.revision ?? 0, limit: opts.limit ?? 0,
      sort_order: opts.sort?.order ?? 'NONE', sort_target: opts.sort?.target ?? 'KEY',
      max_create_revision: opts.maxCreateRevision ?? 0, count_only: opts.countOnly ?? false, keys_only: opts.keysOnly ?? false,
    });
    return { revision: Number(r.header.revision), kvs: r.kvs.map(kvOf), more: r.more, count: Number(r.count) };
  }

  /** One key, or undefined when absent. */
  async get(key: Buffer): Promise<EtcdKeyValue | undefined> {
    return (await this.range(key, Buffer.alloc(0))).kvs[0];
  }

  /** A put as a one-op txn (the store and the benchmark use Txn for every write); resolves with the commit revision. */
  async put(key: Buffer, value: Buffer, lease?: string): Promise<number> {
    return (await this.txn({ compare: [], success: [{ put: { key, value, lease } }] })).revision;
  }

  async delete(key: Buffer): Promise<number> {
    return (await this.txn({ compare: [], success: [{ deleteKey: key }] })).revision;
  }

  async txn(t: EtcdTxn): Promise<EtcdTxnResult> {
    return txnFromWire(await this.unary((c) => c.kv.Txn.bind(c.kv), 'Txn', txnToWire(t)));
  }

  async compact(revision: number): Promise<void> {
    await this.unary((c) => c.kv.Compact.bind(c.kv), 'Compact', { revision, physical: true });
  }

  async leaseGrant(ttlSeconds: number): Promise<{ id: string; ttl: number }> {
    const r = await this.unary((c) => c.lease.LeaseGrant.bind(c.lease), 'LeaseGrant', { TTL: ttlSeconds, ID: 0 });
    if (r.error) throw new EtcdCallError(`etcd LeaseGrant: ${r.error}`, grpc.status.UNKNOWN, this.endpoint);
    return { id: r.ID, ttl: Number(r.TTL) };
  }

  async leaseRevoke(id: string): Promise<void> {
    await this.unary((c) => c.lease.LeaseRevoke.bind(c.lease), 'LeaseRevoke', { ID: id });
  }

  /**
   * One member's own view (asks that endpoint, not the current one): for
   * health checks. `leader` is "0" when the member has no leader.
   */
  async status(endpoint: string = this.endpoint): Promise<EtcdMemberStatus> {
    const ch = this.channels.find((c) => c.endpoint === endpoint);
    if (!ch) throw new Error(`etcd status: ${endpoint} is not one of this client's endpoints (${this.endpoints.join(', ')})`);
    const r = await this.unary((c) => c.maintenance.Status.bind(c.maintenance), 'Status', {}, ch);
    return {
      endpoint, memberId: r.header.member_id, version: r.version, dbSize: Number(r.dbSize), leader: r.leader,
      raftIndex: Number(r.raftIndex), raftTerm: Number(r.raftTerm), errors: r.errors, isLearner: r.isLearner,
    };
  }

  async memberList(): Promise<EtcdMember[]> {
    const r = await this.unary((c) => c.cluster.MemberList.bind(c.cluster), 'MemberList', {});
    return r.members.map((m) => ({ id: m.ID, name: m.name, peerUrls: m.peerURLs, clientUrls: m.clientURLs, isLearner: m.isLearner }));
  }

  /**
   * Watches [key, rangeEnd) from `startRevision` (inclusive). A broken stream
   * is re-created (on the next endpoint) from the revision after the last one
   * delivered, so no event is missed or repeated; if that revision has been
   * compacted, `onCompacted` is called and the watcher stops: reload and watch
   * again.
   */
  watch(options: EtcdWatchOptions, handlers: EtcdWatchHandlers): EtcdWatcher {
    return new EtcdWatcher(this, options, handlers);
  }

  /**
   * A watch stream on the current endpoint. `hasleader` makes the member
   * cancel the stream when it loses its leader, so a watcher on a member cut
   * off from the quorum is not left silently behind (as clientv3 does).
   */
  watchStream(): { stream: grpc.ClientDuplexStream<object, WireWatchResponse>; endpoint: string; failed: () => void } {
    const ch = this.channels[this.current]!;
    const meta = new grpc.Metadata();
    meta.set('hasleader', 'true');
    return { stream: ch.watch.Watch(meta), endpoint: ch.endpoint, failed: () => this.failover(ch) };
  }

  keepAliveStream(): { stream: grpc.ClientDuplexStream<object, WireLeaseKeepAliveResponse>; endpoint: string; failed: () => void } {
    const ch = this.channels[this.current]!;
    const meta = new grpc.Metadata();
    meta.set('hasleader', 'true');
    return { stream: ch.lease.LeaseKeepAlive(meta), endpoint: ch.endpoint, failed: () => this.failover(ch) };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.channels) { c.watch.close(); c.lease.close(); c.maintenance.close(); c.cluster.close(); c.kv.close(); }
  }
}

export interface EtcdRangeOptions {
  readonly revision?: number;
  readonly limit?: number;
  readonly sort?: { readonly target: 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE'; readonly order: 'ASCEND' | 'DESCEND' };
  /** Only keys created at or before this revision (0: no bound). */
  readonly maxCreateRevision?: number;
  readonly countOnly?: boolean;
  readonly keysOnly?: boolean;
}

export interface EtcdRangeResult {
  readonly revision: number;
  readonly kvs: EtcdKeyValue[];
  readonly more: boolean;
  readonly count: number;
}

export interface EtcdMemberStatus {
  readonly endpoint: string;
  readonly memberId: string;
  readonly version: string;
  readonly dbSize: number;
  /** The member id this member follows, "0" when it has no leader. */
  readonly leader: string;
  readonly raftIndex: number;
  readonly raftTerm: number;
  readonly errors: readonly string[];
  readonly isLearner: boolean;
}

export interface EtcdMember {
  readonly id: string;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

export interface EtcdWatchOptions {
  readonly key: Buffer;
  /** Empty or absent: just `key`; `prefixEnd(key)`: every key under the prefix. */
  readonly rangeEnd?: Buffer;
  readonly startRevision: number;
  /** Wait before re-creating a broken stream, in ms (default 250, doubling to 2000). */
  readonly retryMs?: number;
}

export interface EtcdWatchHandlers {
  /** The events of one revision or more, in order; `revision` is the last one they bring the watcher to. */
  onEvents(events: readonly EtcdEvent[], revision: number): void;
  /** The start revision was compacted away (at `compactRevision`); the watcher has stopped. */
  onCompacted(compactRevision: number): void;
  /** The stream broke (etcd unreachable, no leader); the watcher retries on its own. */
  onError?(error: EtcdCallError): void;
  /** The watch is (again) established: events from here on are live. */
  onSynced?(): void;
}

export class EtcdWatcher {
  private stream: grpc.ClientDuplexStream<object, WireWatchResponse> | undefined;
  private nextRevision: number;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs: number;

  constructor(private readonly client: EtcdClient, private readonly options: EtcdWatchOptions, private readonly handlers: EtcdWatchHandlers) {
    this.nextRevision = options.startRevision;
    this.retryMs = options.retryMs ?? 250;
    this.open();
  }

  /** The first revision not yet delivered. */
  get revision(): number {
    return this.nextRevision;
  }

  private open(): void {
    if (this.stopped || this.client.isClosed) return;
    const { stream, endpoint, failed } = this.client.watchStream();
    this.stream = stream;
    let broken = false;
    const broke = (e: grpc.ServiceError | Error) => {
      if (broken || this.stopped) return;
      broken = true;
      const code = 'code' in e && typeof e.code === 'number' ? (e.code as grpc.status) : grpc.status.UNAVAILABLE;
      const err = new EtcdCallError(`etcd Watch at ${endpoint}: ${'details' in e && e.details ? e.details : e.message}`, code, endpoint);
      failed();
      stream.removeAllListeners();
      stream.on('error', () => {});
      stream.cancel();
      this.handlers.onError?.(err);
      this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.open(); }, this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 2000);
    };
    stream.on('data', (r: WireWatchResponse) => {
      if (this.stopped) return;
      if (r.canceled) {
        const compacted = Number(r.compact_revision);
        if (compacted > 0) {
          this.stop();
          this.handlers.onCompacted(compacted);
        } else {
          broke(new Error(`watch canceled: ${r.cancel_reason || 'no reason given'}`));
        }
        return;
      }
      if (r.created) {
        this.retryMs = this.options.retryMs ?? 250;
        this.handlers.onSynced?.();
      }
      if (r.events.length) {
        const events = r.events.map((e): EtcdEvent => ({ type: e.type, kv: kvOf(e.kv) }));
        const last = events[events.length - 1]!.kv.modRevision;
        this.nextRevision = last + 1;
        this.handlers.onEvents(events, last);
      }
    });
    stream.on('error', broke);
    stream.on('end', () => broke(new Error('watch stream ended')));
    stream.write({
      create_request: {
        key: this.options.key, range_end: this.options.rangeEnd?.length ? this.options.rangeEnd : undefined, start_revision: this.nextRevision,
        progress_notify: false, filters: [], prev_kv: false, watch_id: 0, fragment: false,
      },
    });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const s = this.stream;
    if (s) { s.removeAllListeners(); s.on('error', () => {}); s.cancel(); }
  }
}

/**
 * An etcd lease kept alive by this process: one per head, carrying its
 * liveness (election keys, DHCP offers hang off it). `lost` resolves when the
 * lease has expired or cannot be kept (etcd unreachable for the whole TTL),
 * or the session is closed; from then on keys on it must be taken as gone.
 */
export class EtcdSession {
  readonly lost: Promise<void>;
  private resolveLost!: () => void;
  private ended = false;
  private stream: grpc.ClientDuplexStream<object, WireLeaseKeepAliveResponse> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** When the last keep-alive answer said the lease would expire (ms since the epoch). */
  private expiresAt: number;

  private constructor(private readonly client: EtcdClient, readonly lease: string, readonly ttlSeconds: number) {
    this.lost = new Promise((r) => { this.resolveLost = r; });
    this.expiresAt = Date.now() + ttlSeconds * 1000;
    this.tick();
  }

  static async create(client: EtcdClient, ttlSeconds = 10): Promise<EtcdSession> {
    const { id, ttl } = await client.leaseGrant(ttlSeconds);
    return new EtcdSession(client, id, ttl);
  }

  get alive(): boolean {
    return !this.ended;
  }

  /** Sends a keep-alive every third of the TTL; a broken stream is re-opened at the next tick. */
  private tick(): void {
    if (this.ended) return;
    if (Date.now() >= this.expiresAt || this.client.isClosed) { this.end(); return; }
    if (!this.stream) {
      const { stream, failed } = this.client.keepAliveStream();
      this.stream = stream;
      stream.on('data', (r: WireLeaseKeepAliveResponse) => {
        const ttl = Number(r.TTL);
        if (ttl <= 0) { this.end(); return; }
        this.expiresAt = Date.now() + ttl * 1000;
      });
      const drop = () => {
        if (this.stream !== stream) return;
        failed();
        this.stream = undefined;
        stream.removeAllListeners();
        stream.on('error', () => {});
        stream.cancel();
      };
      stream.on('error', drop);
      stream.on('end', drop);
    }
    this.stream.write({ ID: this.lease });
    // Every third of the TTL; sooner as the expiry nears while answers are missing, to keep the lease across a short outage.
    const wait = Math.max(200, Math.min((this.ttlSeconds * 1000) / 3, (this.expiresAt - Date.now()) / 2));
    this.timer = setTimeout(() => this.tick(), wait);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearTimeout(this.timer);
    const s = this.stream;
    this.stream = undefined;
    if (s) { s.removeAllListeners(); s.on('error', () => {}); s.cancel(); }
    this.resolveLost();
  }

  /** Stops the keep-alives and revokes the lease (its keys go at once); best effort when etcd is unreachable. */
  async close(): Promise<void> {
    const wasAlive = !this.ended;
    this.end();
    if (wasAlive) await this.client.leaseRevoke(this.lease).catch(() => {});
  }
}

export { kvOf as etcdKvFromWire };
