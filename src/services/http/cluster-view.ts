/**
 * What the UI's cluster page draws, gathered on the head: the last boots'
 * timelines (the boot storm), request rates per protocol sampled from this
 * head's own counters, pool usage, and each node's CPU and memory as telegraf
 * last reported them to this head's InfluxDB. The browser talks to this head
 * only; the head asks InfluxDB (its /query API), at most once per USAGE_TTL_MS.
 */
import type { ClusterModel } from '../../cluster/model.ts';
import type { BootTimeline } from '../../cluster/types.ts';
import type { TelemetryConfig } from '../../config/sections/telemetry.ts';
import type { Metrics } from '../../metrics.ts';
import type { Store } from '../../store/store.ts';
import type { LeaseTable } from '../dhcp/leases.ts';

/** The counter each protocol's requests are counted in (summed over its labels). */
export const RATE_COUNTERS = {
  dhcp: 'bootherd_dhcp_received_total',
  tftp: 'bootherd_tftp_requests_total',
  dns: 'bootherd_dns_queries_total',
  ntp: 'bootherd_ntp_received_total',
  http: 'bootherd_http_requests_total',
  telemetry: 'bootherd_telemetry_accepted_batches_total',
} as const;
export type RateProtocol = keyof typeof RATE_COUNTERS;

/** Requests per second of each protocol over the interval that ends at `at`. */
export interface RatePoint {
  readonly at: number;
  readonly perSecond: Readonly<Record<RateProtocol, number>>;
}

interface Sample { readonly at: number; readonly totals: Record<RateProtocol, number> }

/**
 * Samples the request counters every `intervalMs` and keeps the last `keep`
 * samples (ten minutes at 5 s): a page opened now shows the recent past.
 */
export class RequestRates {
  private readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly metrics: Metrics, readonly intervalMs = 5000, private readonly keep = 120, private readonly clock: () => number = Date.now) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The rates between consecutive samples, the last one ending now (when a second or more has passed). */
  points(now = this.clock()): RatePoint[] {
    const all = [...this.samples];
    const last = all[all.length - 1];
    if (!last || now - last.at >= 1000) all.push(this.read(now));
    const out: RatePoint[] = [];
    for (let i = 1; i < all.length; i++) {
      const a = all[i - 1]!, b = all[i]!;
      const seconds = (b.at - a.at) / 1000;
      const perSecond = {} as Record<RateProtocol, number>;
      // A counter never goes down; if a family was reset (it is not today), show 0, not a negative rate.
      for (const p of Object.keys(RATE_COUNTERS) as RateProtocol[]) perSecond[p] = Math.max(0, b.totals[p] - a.totals[p]) / seconds;
      out.push({ at: b.at, perSecond });
    }
    return out;
  }

  /** Takes one sample now (the timer's job; tests call it). */
  sample(): void {
    this.samples.push(this.read(this.clock()));
    if (this.samples.length > this.keep) this.samples.shift();
  }

  private read(at: number): Sample {
    const totals = {} as Record<RateProtocol, number>;
    for (const [p, name] of Object.entries(RATE_COUNTERS) as Array<[RateProtocol, string]>) totals[p] = this.metrics.total(name);
    return { at, totals };
  }
}

export interface PoolView {
  readonly subnet: string;
  readonly size: number;
  readonly bound: number;
  readonly declined: number;
  readonly free: number;
  /** Pool addresses neither free nor leased: reserved for nodes, the router, the head. */
  readonly reserved: number;
}

/** One node's last CPU and memory use (percent) from telegraf's `cpu` (cpu-total) and `mem`. */
export interface NodeUsage {
  /** telegraf's `host` tag. */
  readonly host: string;
  /** The node it names, when it is one (the host name with or without the cluster domain). */
  readonly node: string | null;
  readonly cpu: number | null;
  readonly mem: number | null;
  /** When the newer of the two was measured (ms since the epoch). */
  readonly at: number;
}

export interface UsageView {
  readonly influxdb: string;
  readonly database: string;
  /** Why InfluxDB could not be asked, or null. */
  readonly error: string | null;
  readonly nodes: readonly NodeUsage[];
}

export interface ClusterView {
  readonly now: number;
  /** The most recent boots (at most BOOTS_SHOWN), latest start first. */
  readonly boots: readonly BootTimeline[];
  /** How many nodes have a boot timeline in all. */
  readonly bootsTotal: number;
  readonly rates: { readonly intervalMs: number; readonly points: readonly RatePoint[] };
  readonly pools: readonly PoolView[];
  /** Node CPU/memory; null when telemetry is off. */
  readonly usage: UsageView | null;
}

const BOOTS_SHOWN = 200;
/** Telegraf points older than this are not a node's current use. */
const USAGE_WINDOW = '10m';
const USAGE_TTL_MS = 5000;
const QUERY_TIMEOUT_MS = 3000;

interface InfluxSeries { name: string; tags?: Record<string, string>; columns: string[]; values: unknown[][] }
interface InfluxQueryResult { results?: Array<{ series?: InfluxSeries[]; error?: string }>; error?: string }

export class ClusterViews {
  private usage: { at: number; view: Promise<UsageView> } | undefined;

  constructor(private readonly deps: {
    readonly model: ClusterModel;
    readonly store: Store;
    readonly leases: LeaseTable | undefined;
    readonly telemetry: TelemetryConfig | undefined;
    readonly rates: RequestRates;
  }) {}

  async view(now = Date.now()): Promise<ClusterView> {
    const { store, rates } = this.deps;
    const boots = [...store.values('boots')].sort((a, b) => b.startedAt - a.startedAt);
    return {
      now,
      boots: boots.slice(0, BOOTS_SHOWN),
      bootsTotal: boots.length,
      rates: { intervalMs: rates.intervalMs, points: rates.points(now) },
      pools: this.pools(now),
      usage: await this.nodeUsage(now),
    };
  }

  private pools(now: number): PoolView[] {
    const { model, leases } = this.deps;
    if (!leases) return [];
    const out: PoolView[] = [];
    for (const s of model.subnets) {
      if (!s.pool) continue;
      const u = leases.poolUsage(s, now);
      const size = s.pool.end - s.pool.start + 1;
      out.push({ subnet: s.cidr.text, size, ...u, reserved: size - u.free - u.bound - u.declined });
    }
    return out;
  }

  private nodeUsage(now: number): Promise<UsageView> | null {
    const t = this.deps.telemetry;
    if (!t) return null;
    if (!this.usage || now - this.usage.at >= USAGE_TTL_MS) this.usage = { at: now, view: this.queryUsage(t) };
    return this.usage.view;
  }

  private async queryUsage(t: TelemetryConfig): Promise<UsageView> {
    const base = { influxdb: t.influxdb, database: t.database };
    const q = `SELECT last("usage_idle") AS "idle" FROM "cpu" WHERE "cpu" = 'cpu-total' AND time > now() - ${USAGE_WINDOW} GROUP BY "host"; `
      + `SELECT last("used_percent") AS "used" FROM "mem" WHERE time > now() - ${USAGE_WINDOW} GROUP BY "host"`;
    let body: InfluxQueryResult;
    try {
      const res = await fetch(`${t.influxdb}/query?${new URLSearchParams({ db: t.database, epoch: 'ms', q })}`, { signal: AbortSignal.timeout(QUERY_TIMEOUT_MS) });
      body = await res.json() as InfluxQueryResult;
      if (!res.ok) return { ...base, error: `InfluxDB answered ${res.status}: ${body.error ?? ''}`.trim(), nodes: [] };
    } catch (e) {
      return { ...base, error: `InfluxDB at ${t.influxdb} did not answer: ${(e as Error).message}`, nodes: [] };
    }
    const failed = body.results?.find((r) => r.error)?.error;
    // A database telegraf has not written to yet is no error: there is just nothing to draw.
    if (failed && !/database not found/.test(failed)) return { ...base, error: `InfluxDB: ${failed}`, nodes: [] };
    const byHost = new Map<string, { cpu: number | null; mem: number | null; at: number }>();
    const take = (series: InfluxSeries[] | undefined, field: 'cpu' | 'mem', value: (v: number) => number) => {
      for (const s of series ?? []) {
        const host = s.tags?.['host'];
        const [at, v] = s.values[0] ?? [];
        if (!host || typeof at !== 'number' || typeof v !== 'number') continue;
        const u = byHost.get(host) ?? { cpu: null, mem: null, at: 0 };
        u[field] = Math.round(value(v) * 10) / 10;
        u.at = Math.max(u.at, at);
        byHost.set(host, u);
      }
    };
    take(body.results?.[0]?.series, 'cpu', (idle) => 100 - idle);
    take(body.results?.[1]?.series, 'mem', (used) => used);
    const { model } = this.deps;
    const suffix = `.${model.domain}`;
    const nodes = [...byHost].map(([host, u]) => {
      const short = host.endsWith(suffix) ? host.slice(0, -suffix.length) : host;
      return { host, node: model.nodeByName(short) ? short : null, ...u };
    }).sort((a, b) => a.host.localeCompare(b.host, 'en', { numeric: true }));
    return { ...base, error: null, nodes };
  }
}
