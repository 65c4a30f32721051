/**
 * Builds the services from the config and the store, starts and stops them.
 * Services share one cluster model, one store, one logger and one metrics
 * registry; nothing else passes between them.
 */
import type { RootDiskProvider } from './boot/ipxe-script.ts';
import { ClusterModel } from './cluster/model.ts';
import { BootTimelines } from './cluster/timeline.ts';
import { httpBaseOf } from './cluster/urls.ts';
import type { Config } from './config/load.ts';
import { createLogger, type Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { DhcpService } from './services/dhcp/service.ts';
import { DnsService } from './services/dns/service.ts';
import { HttpService } from './services/http/service.ts';
import { TelemetryService } from './services/telemetry/service.ts';
import { IscsiService } from './services/iscsi/service.ts';
import { NtpService } from './services/ntp/service.ts';
import type { Runner } from './services/iscsi/backend.ts';
import type { Service, ServiceDeps } from './services/service.ts';
import { IpxeScripts } from './services/tftp/ipxe-scripts.ts';
import { PxelinuxConfigs } from './services/tftp/pxelinux.ts';
import { TftpService } from './services/tftp/service.ts';
import { sharedFieldDigests } from './config/shared.ts';
import { EmbeddedStore } from './store/embedded.ts';
import { EtcdCallError, EtcdClient } from './store/etcd-client.ts';
import { HeadRegistry } from './store/etcd-heads.ts';
import { EtcdLeadership } from './store/etcd-leadership.ts';
import { EtcdMember } from './store/etcd-member.ts';
import { etcdPlanOf, type EtcdPlan } from './store/etcd-plan.ts';
import { EtcdStore } from './store/etcd.ts';
import { StoreUnavailableError, type Store } from './store/store.ts';

/** The names services go by in /api/v1/status and `bootherd status`. */
export type ServiceName = 'heads' | 'ntpLeader' | 'dhcp' | 'tftp' | 'dns' | 'ntp' | 'iscsi' | 'telemetry' | 'http';

export interface ServerOptions {
  readonly log?: Logger;
  readonly store?: Store;
  /** Open a damaged state directory by moving damaged lines aside (src/store/embedded.ts). */
  readonly repairStore?: boolean;
  /** Runs targetcli/tgtadm (default: directly; under `serve --user`, through the root supervisor). */
  readonly iscsiRunner?: Runner;
}

export class Server {
  readonly log: Logger;
  readonly store: Store;
  readonly metrics = new Metrics();
  model!: ClusterModel;
  timelines!: BootTimelines;
  dhcp: DhcpService | undefined;
  tftp: TftpService | undefined;
  dns: DnsService | undefined;
  ntp: NtpService | undefined;
  iscsi: IscsiService | undefined;
  http: HttpService | undefined;
  telemetry: TelemetryService | undefined;
  /** The heads as they see each other through etcd (several heads only). */
  heads: HeadRegistry | undefined;
  /** The NTP time source without upstream, as etcd elects it (several heads on etcd). */
  ntpLeader: EtcdLeadership | undefined;
  /** etcd for `store: { kind: etcd }`: the client every etcd user of this head shares, and this head's own member. */
  readonly etcd: { readonly plan: EtcdPlan; readonly client: EtcdClient; readonly member: EtcdMember | undefined } | undefined;
  /** The services built, by status name, in start order (stopped in reverse). */
  private readonly services = new Map<ServiceName, Service>();
  private stopping = false;

  constructor(readonly config: Config, private readonly opts: ServerOptions = {}) {
    this.log = opts.log ?? createLogger(config.log.level);
    const plan = opts.store ? undefined : etcdPlanOf(config);
    if (plan) {
      const client = new EtcdClient({ endpoints: plan.endpoints });
      this.etcd = { plan, client, member: plan.member && new EtcdMember({ ...plan.member, log: this.log }) };
      this.store = new EtcdStore({ client, cluster: plan.cluster });
    } else {
      this.store = opts.store ?? new EmbeddedStore(config.stateDir, { log: this.log, metrics: this.metrics, repair: opts.repairStore });
    }
  }

  /**
   * Opens the store: at once for the embedded one; for etcd, once a quorum
   * answers (the members of a new cluster wait for each other), retrying
   * until then, since a head without the cluster's records cannot answer for it.
   */
  private async openStore(): Promise<void> {
    if (!this.etcd) return this.store.open();
    this.etcd.member?.start();
    let loggedAt = 0;
    for (;;) {
      try {
        await this.store.open();
        this.log.info({ endpoints: this.etcd.plan.endpoints }, 'etcd store loaded');
        return;
      } catch (e) {
        if (!(e instanceof EtcdCallError || e instanceof StoreUnavailableError) || this.stopping) throw e;
        if (Date.now() - loggedAt > 10_000) {
          loggedAt = Date.now();
          this.log.warn({ err: (e as Error).message, endpoints: this.etcd.plan.endpoints }, 'waiting for etcd: a quorum of the members must run (start bootherd on the other heads; `bootherd check` says which are missing)');
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Opens the store and builds the services without binding any socket. */
  async open(): Promise<void> {
    await this.openStore();
    if (this.etcd) {
      const { client, member, plan } = this.etcd;
      const self = { name: this.config.head.name, address: this.config.head.address };
      const store = this.store as EtcdStore;
      this.heads = new HeadRegistry({
        client, prefix: plan.headsPrefix, self, heads: this.config.heads.length ? this.config.heads : [self],
        fields: sharedFieldDigests(this.config), log: this.log, member, storeStatus: () => store.status(),
        clockOf: (address) => headClock(address, this.config.http.port, Boolean(this.config.http.tls)),
        maxClockSkewMs: this.config.dhcp.maxClockSkew * 1000,
      });
      this.services.set('heads', this.heads);
      const registry = this.heads;
      store.offersOn(() => registry.sessionLease());
      if (this.config.ntp.enabled && this.config.heads.length > 1) {
        this.ntpLeader = new EtcdLeadership(client, `/bootherd-elections/${plan.cluster}/ntp`, self.name, this.log);
        this.services.set('ntpLeader', this.ntpLeader);
      }
    }
    this.model = new ClusterModel(this.config, this.store);
    this.timelines = new BootTimelines(this.store, (e) => this.log.error({ err: e }, 'boot timeline write failed'));
    const httpBase = httpBaseOf(this.config);
    const deps = { config: this.config, model: this.model, store: this.store, log: this.log, metrics: this.metrics, timelines: this.timelines } satisfies ServiceDeps;
    // Nodes' iPXE scripts reach their root disks through the iSCSI service (built below; asked per script).
    const rootDisk: RootDiskProvider = (node) => this.iscsi?.rootDiskBoot(node);
    if (this.config.dhcp.enabled) {
      const registry = this.heads;
      const heads = registry && this.config.heads.length > 1 ? { self: this.config.head.name, live: () => registry.liveNames(), refusal: () => registry.clockRefusal() } : undefined;
      this.dhcp = new DhcpService({ ...deps, httpBase, rootPath: (node) => this.iscsi?.rootPath(node), heads });
      this.services.set('dhcp', this.dhcp);
    }
    if (this.config.tftp.enabled) {
      const rendered = [new PxelinuxConfigs(this.model, httpBase), new IpxeScripts(this.model, httpBase, rootDisk, () => this.telemetry && { url: httpBase, token: this.telemetry.ingestToken })];
      this.tftp = new TftpService({ ...deps, rendered });
      this.services.set('tftp', this.tftp);
    }
    if (this.config.dns.enabled) {
      this.dns = new DnsService(deps);
      this.services.set('dns', this.dns);
    }
    if (this.config.ntp.enabled) {
      this.ntp = new NtpService({ ...deps, electedHead: this.ntpLeader && (() => this.ntpLeader?.leader) });
      this.services.set('ntp', this.ntp);
    }
    // Always built: with iscsi.enabled false or no backend it stays off and its status() says why.
    this.iscsi = new IscsiService({ ...deps, run: this.opts.iscsiRunner });
    this.services.set('iscsi', this.iscsi);
    // Before HTTP: its write endpoints queue into the relay, which must be open first.
    if (this.config.telemetry.enabled && this.config.http.enabled) {
      this.telemetry = new TelemetryService(deps);
      this.services.set('telemetry', this.telemetry);
    }
    if (this.config.http.enabled) {
      this.http = new HttpService({ ...deps, httpBase, leases: this.dhcp?.leases, serviceStatus: () => this.serviceStatus(), rootDisk, telemetry: this.telemetry });
      this.services.set('http', this.http);
    }
  }

  /** Each built service's status under its name (a service without status() shows as running). */
  serviceStatus(): Record<string, object> {
    const out: Record<string, object> = {};
    for (const [name, service] of this.services) out[name] = service.status?.() ?? { running: true };
    return out;
  }

  async start(): Promise<void> {
    await this.open();
    try {
      for (const s of this.services.values()) await s.start();
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.log.info({ config: this.config.source, state: this.config.stateDir, nodes: this.model.nodeCount() }, 'bootherd started');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const s of [...this.services.values()].reverse()) {
      try { await s.stop(); } catch (e) { this.log.warn({ err: e }, 'service stop failed'); }
    }
    await this.store.close();
    if (this.etcd) {
      this.etcd.client.close();
      await this.etcd.member?.stop();
    }
  }
}

/** Another head's clock, from its /api/v1/clock (the same HTTP port as this head's, as every head's file says). */
async function headClock(address: string, port: number, tls: boolean): Promise<number> {
  const res = await fetch(`${tls ? 'https' : 'http'}://${address}:${port}/api/v1/clock`, { signal: AbortSignal.timeout(1000) });
  const body = await res.json() as { now?: unknown };
  if (typeof body.now !== 'number') throw new Error(`head ${address}: /api/v1/clock gave no clock`);
  return body.now;
}
