/**
 * The heads of one cluster, as they see each other through etcd: each head
 * keeps a record under <prefix>heads/<name> (its address and the digests of
 * its cluster file's shared fields, src/config/shared.ts), attached to an
 * etcd lease it keeps alive. A head whose record is there is alive; when it
 * dies, etcd drops the record once the lease runs out. Comparing digests
 * tells every head which fields of the other heads' files differ from its
 * own; differences are logged (once per change) and shown in /api/v1/status.
 *
 * Talks to etcd through the store's client (src/store/etcd-client.ts): a
 * keepalive on the lease stream and one range every poll.
 */
import type { Logger } from '../log.ts';
import { differingFields } from '../config/shared.ts';
import { prefixEnd, type EtcdClient } from './etcd-client.ts';

export interface HeadRecord {
  readonly name: string;
  readonly address: string;
  /** Field name -> digest of the shared fields of this head's cluster file. */
  readonly fields: Readonly<Record<string, string>>;
  readonly startedAt: number;
}

export interface HeadStatus {
  readonly name: string;
  readonly address: string;
  readonly self: boolean;
  /** Its record is in etcd (its lease is alive); for this head, whether it is registered. */
  readonly alive: boolean;
  /** Shared fields of its cluster file that differ from this head's ([] for this head and for a head not seen). */
  readonly configDiffers: readonly string[];
}

export interface HeadRegistryOptions {
  readonly client: EtcdClient;
  /** Key prefix of the cluster's records, ending in '/'. */
  readonly prefix: string;
  readonly self: { readonly name: string; readonly address: string };
  /** `heads:` of the cluster file, in order. */
  readonly heads: readonly { readonly name: string; readonly address: string }[];
  readonly fields: Readonly<Record<string, string>>;
  readonly log: Logger;
  /** Lease TTL: how long a dead head still counts as alive (default 10 s). */
  readonly ttlSeconds?: number;
  /** Between polls (default 2 s). */
  readonly pollMs?: number;
}

type KeepAlive = ReturnType<EtcdClient['keepAliveStream']>;

export class HeadRegistry {
  private lease: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private seen = new Map<string, HeadRecord>();
  private reported = new Map<string, string>();
  private readonly key: string;
  private readonly ttl: number;
  private readonly log: Logger;
  private keepAlive: KeepAlive | undefined;
  private pendingTtl: ((ttl: number | Error) => void) | undefined;
  /** Whether the last poll reached etcd. */
  reachable = false;

  constructor(private readonly opts: HeadRegistryOptions) {
    this.key = `${opts.prefix}heads/${opts.self.name}`;
    this.ttl = opts.ttlSeconds ?? 10;
    this.log = opts.log.child({ component: 'heads' });
  }

  start(): void {
    this.stopped = false;
    const tick = () => {
      this.running = this.poll().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(tick, this.opts.pollMs ?? 2000);
      });
    };
    tick();
  }

  /** Runs one poll now (tests, and after a change that should show at once). */
  async refresh(): Promise<void> {
    await this.running;
    await this.poll();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    // Revoking drops the record at once: the other heads see this one gone without waiting for the TTL.
    if (this.lease) await this.opts.client.leaseRevoke(this.lease).catch(() => undefined);
    this.lease = undefined;
    this.closeKeepAlive(new Error('registry stopped'));
  }

  status(): HeadStatus[] {
    return this.opts.heads.map((h) => {
      const self = h.name === this.opts.self.name;
      const rec = this.seen.get(h.name);
      return {
        name: h.name, address: h.address, self,
        alive: self ? this.lease !== undefined && this.reachable : rec !== undefined,
        configDiffers: !self && rec ? differingFields(this.opts.fields, rec.fields) : [],
      };
    });
  }

  private async poll(): Promise<void> {
    try {
      await this.register();
      const from = Buffer.from(`${this.opts.prefix}heads/`);
      const res = await this.opts.client.range(from, prefixEnd(from));
      const seen = new Map<string, HeadRecord>();
      for (const kv of res.kvs) {
        try {
          const rec = JSON.parse(kv.value.toString()) as HeadRecord;
          if (typeof rec.name === 'string' && rec.fields && typeof rec.fields === 'object') seen.set(rec.name, rec);
        } catch { /* not a head record: ignored */ }
      }
      this.seen = seen;
      if (!this.reachable) this.log.info({ endpoints: this.opts.client.endpoints }, 'etcd reachable: this head is registered');
      this.reachable = true;
      this.report();
    } catch (e) {
      if (this.reachable) this.log.warn({ err: (e as Error).message, endpoints: this.opts.client.endpoints }, 'etcd unreachable: the other heads\' liveness is not known until it is back');
      this.reachable = false;
    }
  }

  /** Keeps this head's lease alive, or takes a new one and writes the record (after start, or after etcd lost the lease). */
  private async register(): Promise<void> {
    if (this.lease) {
      if (await this.keepLeaseAlive(this.lease) > 0) return;
      this.log.info({ lease: this.lease }, 'this head\'s etcd lease expired; registering again');
      this.lease = undefined;
    }
    const grant = await this.opts.client.leaseGrant(this.ttl);
    const rec: HeadRecord = { name: this.opts.self.name, address: this.opts.self.address, fields: this.opts.fields, startedAt: Date.now() };
    await this.opts.client.txn({ compare: [], success: [{ put: { key: Buffer.from(this.key), value: Buffer.from(JSON.stringify(rec)), lease: grant.id } }] });
    this.lease = grant.id;
  }

  /** Logs each head whose differing fields changed since the last report. */
  private report(): void {
    for (const h of this.status()) {
      if (h.self || !h.alive) continue;
      const now = h.configDiffers.join(',');
      if ((this.reported.get(h.name) ?? '') === now) continue;
      this.reported.set(h.name, now);
      if (now) this.log.warn({ head: h.name, fields: h.configDiffers }, `head ${h.name}'s cluster file differs from this head's in: ${h.configDiffers.join(', ')}; make the files agree`);
      else this.log.info({ head: h.name }, `head ${h.name}'s cluster file agrees with this head's again`);
    }
  }

  /** One keepalive on the lease stream (opened on first use, again after it fails): the TTL left, 0 when the lease is gone. */
  private keepLeaseAlive(id: string): Promise<number> {
    if (!this.keepAlive) {
      const ka = this.opts.client.keepAliveStream();
      ka.stream.on('data', (r: { TTL: string }) => { const p = this.pendingTtl; this.pendingTtl = undefined; p?.(Number(r.TTL)); });
      const fail = (e: Error) => { if (this.keepAlive === ka) { ka.failed(); this.closeKeepAlive(e); } };
      ka.stream.on('error', fail);
      ka.stream.on('end', () => fail(new Error('etcd closed the lease keepalive stream')));
      this.keepAlive = ka;
    }
    const ka = this.keepAlive;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { ka.failed(); this.closeKeepAlive(new Error(`etcd lease keepalive at ${ka.endpoint}: no answer within ${this.opts.client.requestTimeoutMs} ms`)); }, this.opts.client.requestTimeoutMs);
      this.pendingTtl = (v) => { clearTimeout(timer); if (v instanceof Error) reject(v); else resolve(v); };
      ka.stream.write({ ID: id });
    });
  }

  private closeKeepAlive(e: Error): void {
    const ka = this.keepAlive;
    this.keepAlive = undefined;
    const p = this.pendingTtl;
    this.pendingTtl = undefined;
    p?.(e);
    ka?.stream.cancel();
  }
}
