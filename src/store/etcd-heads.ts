/**
 * The heads of one cluster, as they see each other through etcd: each head
 * keeps a record under <prefix>heads/<name> (its address and the digests of
 * its cluster file's shared fields, src/config/shared.ts), attached to an
 * etcd lease it keeps alive. A head whose record is there is alive; when it
 * dies, etcd drops the record once the lease runs out. Comparing digests
 * tells every head which fields of the other heads' files differ from its
 * own; differences are logged (once per change) and shown in /api/v1/status.
 *
 * Talks to etcd through the store's client (src/store/etcd-client.ts): an
 * EtcdSession keeps the lease, and every poll reads the records in one range.
 */
import type { Logger } from '../log.ts';
import { differingFields } from '../config/shared.ts';
import { EtcdSession, prefixEnd, type EtcdClient } from './etcd-client.ts';

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
  /** Its clock minus this head's, as the last probe measured it (another live head only). */
  readonly clockOffsetMs?: number;
}

/** One clock probe of another head: its offset from this head's clock and the probe's round trip. */
interface ClockReading {
  readonly offsetMs: number;
  readonly rttMs: number;
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
  /** This head's own etcd member and the store's view of etcd, for status() (the server passes them). */
  readonly member?: { readonly clientUrl: string; readonly pid: number | undefined; readonly restarts: number };
  readonly storeStatus?: () => object;
  /** Reads another head's clock (ms since the epoch) at its address; each poll probes every live head. */
  readonly clockOf?: (address: string) => Promise<number>;
  /** The most a head's clock may differ from the others' (dhcp.maxClockSkew) before it stops serving DHCP. */
  readonly maxClockSkewMs?: number;
}

export class HeadRegistry {
  private session: EtcdSession | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private seen = new Map<string, HeadRecord>();
  private reported = new Map<string, string>();
  private clocks = new Map<string, ClockReading>();
  private refusal: string | undefined;
  private readonly key: string;
  private readonly ttl: number;
  private readonly log: Logger;
  /** Whether the last poll reached etcd. */
  reachable = false;

  constructor(private readonly opts: HeadRegistryOptions) {
    this.key = `${opts.prefix}heads/${opts.self.name}`;
    this.ttl = opts.ttlSeconds ?? 10;
    this.log = opts.log.child({ component: 'heads' });
  }

  async start(): Promise<void> {
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
    await this.session?.close();
    this.session = undefined;
  }

  /** What /api/v1/status shows under `heads`: etcd as this head sees it, and every head. */
  status(): { etcd: object; heads: HeadStatus[] } {
    const m = this.opts.member;
    return {
      etcd: {
        endpoints: this.opts.client.endpoints, reachable: this.reachable,
        ...(m ? { member: { clientUrl: m.clientUrl, pid: m.pid, restarts: m.restarts } } : {}),
        ...(this.opts.storeStatus ? { store: this.opts.storeStatus() } : {}),
      },
      heads: this.heads(),
    };
  }

  /**
   * Why this head must not serve DHCP, or undefined: its clock is off by
   * more than maxClockSkewMs (beyond the probe's own uncertainty, half its round
   * trip) from more than half of the other live heads it could probe. So of
   * three heads the one with the wrong clock stops, and of two, both.
   */
  clockRefusal(): string | undefined {
    return this.refusal;
  }

  private judgeClocks(maxSkewMs: number): string | undefined {
    const others = this.heads().filter((h) => !h.self && h.alive && this.clocks.has(h.name));
    const off = others.filter((h) => { const c = this.clocks.get(h.name)!; return Math.abs(c.offsetMs) - c.rttMs / 2 > maxSkewMs; });
    if (!others.length || off.length * 2 <= others.length) return undefined;
    return `this head's clock differs by more than ${maxSkewMs / 1000} s (dhcp.maxClockSkew) from ${off.map((h) => `${h.name} (${Math.round(this.clocks.get(h.name)!.offsetMs)} ms)`).join(', ')}; synchronise the heads' clocks (NTP)`;
  }

  /** The etcd lease of this head's session while it is alive (what its DHCP offers hang off). */
  sessionLease(): string | undefined {
    return this.session?.alive ? this.session.lease : undefined;
  }

  /** Names of the heads alive now (DHCP's answering head is chosen among them). */
  liveNames(): string[] {
    return this.opts.heads.filter((h) => this.isAlive(h.name)).map((h) => h.name);
  }

  /** Its record is in etcd; for this head, whether it is registered and etcd answers. */
  private isAlive(name: string): boolean {
    return name === this.opts.self.name ? this.session?.alive === true && this.reachable : this.seen.has(name);
  }

  /** Every head of `heads:`, with its liveness and the fields of its file that differ from this head's. */
  heads(): HeadStatus[] {
    return this.opts.heads.map((h) => {
      const self = h.name === this.opts.self.name;
      const rec = this.seen.get(h.name);
      return {
        name: h.name, address: h.address, self,
        alive: this.isAlive(h.name),
        configDiffers: !self && rec ? differingFields(this.opts.fields, rec.fields) : [],
        ...(!self && rec && this.clocks.has(h.name) ? { clockOffsetMs: Math.round(this.clocks.get(h.name)!.offsetMs) } : {}),
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
      await this.probeClocks();
      if (!this.reachable) this.log.info({ endpoints: this.opts.client.endpoints }, 'etcd reachable: this head is registered');
      this.reachable = true;
      this.report();
    } catch (e) {
      if (this.reachable) this.log.warn({ err: (e as Error).message, endpoints: this.opts.client.endpoints }, 'etcd unreachable: the other heads\' liveness is not known until it is back');
      this.reachable = false;
    }
  }

  /** Measures every other live head's clock offset, NTP-style (its reading against the midpoint of the request). */
  private async probeClocks(): Promise<void> {
    const clockOf = this.opts.clockOf;
    if (!clockOf) return;
    const others = [...this.seen.values()].filter((r) => r.name !== this.opts.self.name);
    for (const name of [...this.clocks.keys()]) if (!this.seen.has(name)) this.clocks.delete(name);
    await Promise.all(others.map(async (r) => {
      const sent = Date.now();
      try {
        const theirs = await clockOf(r.address);
        const back = Date.now();
        this.clocks.set(r.name, { offsetMs: theirs - (sent + back) / 2, rttMs: back - sent });
      } catch {
        this.clocks.delete(r.name);
      }
    }));
    if (this.opts.maxClockSkewMs === undefined) return;
    const refusal = this.judgeClocks(this.opts.maxClockSkewMs);
    if (refusal && !this.refusal) this.log.error(`DHCP stopped on this head: ${refusal}`);
    if (!refusal && this.refusal) this.log.info('DHCP serving again: this head\'s clock agrees with the other heads\'');
    this.refusal = refusal;
  }

  /** Takes a lease and writes the record (after start, or once the session's lease is lost); EtcdSession keeps it alive. */
  private async register(): Promise<void> {
    if (this.session?.alive) return;
    if (this.session) this.log.info({ lease: this.session.lease }, 'this head\'s etcd lease expired; registering again');
    this.session = undefined;
    const session = await EtcdSession.create(this.opts.client, this.ttl);
    const rec: HeadRecord = { name: this.opts.self.name, address: this.opts.self.address, fields: this.opts.fields, startedAt: Date.now() };
    try {
      await this.opts.client.put(Buffer.from(this.key), Buffer.from(JSON.stringify(rec)), session.lease);
    } catch (e) {
      await session.close();
      throw e;
    }
    this.session = session;
  }

  /** Logs each head whose differing fields changed since the last report. */
  private report(): void {
    for (const h of this.heads()) {
      if (h.self || !h.alive) continue;
      const now = h.configDiffers.join(',');
      if ((this.reported.get(h.name) ?? '') === now) continue;
      this.reported.set(h.name, now);
      if (now) this.log.warn({ head: h.name, fields: h.configDiffers }, `head ${h.name}'s cluster file differs from this head's in: ${h.configDiffers.join(', ')}; make the files agree`);
      else this.log.info({ head: h.name }, `head ${h.name}'s cluster file agrees with this head's again`);
    }
  }
}
