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
  readonly lease: number;
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
interface WireKv { key: Buffer; value: Buffer; create_revision: string; mod_revision: string; lease: string }
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
interface EtcdServices {
  KV: new (target: string, creds: grpc.ChannelCredentials, opts: grpc.ClientOptions) => KVClient;
  Watch: new (target: string, creds: grpc.ChannelCredentials, opts: grpc.ClientOptions) => WatchClient;
  Lease: new (target: string, creds: grpc.ChannelCredentials, opts: grpc.ClientOptions) => LeaseClient;
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
  key: w.key, value: w.value, createRevision: Number(w.create_revision), modRevision: Number(w.mod_revision), lease: Number(w.lease),
});

function opToWire(op: EtcdOp): object {
  if ('put' in op) return { request_put: { key: op.put.key, value: op.put.value, lease: op.put.lease ?? '0' } };
  if ('deleteKey' in op) return { request_delete_range: { key: op.deleteKey } };
  if ('range' in op) return { request_range: { key: op.range.key, range_end: op.range.rangeEnd ?? Buffer.alloc(0) } };
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

function txnFromWire(r: WireTxnResponse): EtcdTxnResult {
  return {
    revision: Number(r.header.revision),
    succeeded: r.succeeded,
    responses: r.responses.map((o): EtcdOpResult => {
      if (o.response === 'response_txn' && o.response_txn) return { txn: txnFromWire(o.response_txn) };
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

interface Channel { endpoint: string; kv: KVClient; watch: WatchClient; lease: LeaseClient }

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

  private unary<Req extends object, Res>(pick: (c: Channel) => Unary<Req, Res>, name: string, req: Req, timeoutMs = this.requestTimeoutMs): Promise<Res> {
    if (this.closed) return Promise.reject(new EtcdCallError('etcd client is closed', grpc.status.CANCELLED, this.endpoint));
    const ch = this.channels[this.current]!;
    return new Promise((resolve, reject) => {
      pick(ch)(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (e, r) => {
        if (!e) return resolve(r);
        const err = new EtcdCallError(`etcd ${name} at ${ch.endpoint}: ${e.details || e.message}`, e.code, ch.endpoint);
        if (err.unreachable) this.failover(ch);
        reject(err);
      });
    });
  }

  async range(key: Buffer, rangeEnd: Buffer, opts: { revision?: number; limit?: number } = {}): Promise<{ revision: number; kvs: EtcdKeyValue[]; more: boolean }> {
    const r = await this.unary((c) => c.kv.Range.bind(c.kv), 'Range', { key, range_end: rangeEnd, revision: opts.revision ?? 0, limit: opts.limit ?? 0 });
    return { revision: Number(r.header.revision), kvs: r.kvs.map(kvOf), more: r.more };
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

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.channels) { c.watch.close(); c.lease.close(); c.kv.close(); }
  }
}

export { kvOf as etcdKvFromWire };
