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
import { IscsiService } from './services/iscsi/service.ts';
import { NtpService } from './services/ntp/service.ts';
import type { Service, ServiceDeps } from './services/service.ts';
import { IpxeScripts } from './services/tftp/ipxe-scripts.ts';
import { PxelinuxConfigs } from './services/tftp/pxelinux.ts';
import { TftpService } from './services/tftp/service.ts';
import { EmbeddedStore } from './store/embedded.ts';
import type { Store } from './store/store.ts';

/** The names services go by in /api/v1/status and `bootherd status`. */
export type ServiceName = 'dhcp' | 'tftp' | 'dns' | 'ntp' | 'iscsi' | 'http';

export interface ServerOptions {
  readonly log?: Logger;
  readonly store?: Store;
  /** Open a damaged state directory by moving damaged lines aside (src/store/embedded.ts). */
  readonly repairStore?: boolean;
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
  /** The services built, by status name, in start order (stopped in reverse). */
  private readonly services = new Map<ServiceName, Service>();

  constructor(readonly config: Config, opts: ServerOptions = {}) {
    this.log = opts.log ?? createLogger(config.log.level);
    this.store = opts.store ?? new EmbeddedStore(config.stateDir, { log: this.log, metrics: this.metrics, repair: opts.repairStore });
  }

  /** Opens the store and builds the services without binding any socket. */
  async open(): Promise<void> {
    await this.store.open();
    this.model = new ClusterModel(this.config, this.store);
    this.timelines = new BootTimelines(this.store, (e) => this.log.error({ err: e }, 'boot timeline write failed'));
    const httpBase = httpBaseOf(this.config);
    const deps = { config: this.config, model: this.model, store: this.store, log: this.log, metrics: this.metrics, timelines: this.timelines } satisfies ServiceDeps;
    // Nodes' iPXE scripts reach their root disks through the iSCSI service (built below; asked per script).
    const rootDisk: RootDiskProvider = (node) => this.iscsi?.rootDiskBoot(node);
    if (this.config.dhcp.enabled) {
      this.dhcp = new DhcpService({ ...deps, httpBase, rootPath: (node) => this.iscsi?.rootPath(node) });
      this.services.set('dhcp', this.dhcp);
    }
    if (this.config.tftp.enabled) {
      const rendered = [new PxelinuxConfigs(this.model, httpBase), new IpxeScripts(this.model, httpBase, rootDisk)];
      this.tftp = new TftpService({ ...deps, rendered });
      this.services.set('tftp', this.tftp);
    }
    if (this.config.dns.enabled) {
      this.dns = new DnsService(deps);
      this.services.set('dns', this.dns);
    }
    if (this.config.ntp.enabled) {
      this.ntp = new NtpService(deps);
      this.services.set('ntp', this.ntp);
    }
    // Always built: with iscsi.enabled false or no backend it stays off and its status() says why.
    this.iscsi = new IscsiService(deps);
    this.services.set('iscsi', this.iscsi);
    if (this.config.http.enabled) {
      this.http = new HttpService({ ...deps, httpBase, leases: this.dhcp?.leases, serviceStatus: () => this.serviceStatus(), rootDisk });
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
    for (const s of [...this.services.values()].reverse()) {
      try { await s.stop(); } catch (e) { this.log.warn({ err: e }, 'service stop failed'); }
    }
    await this.store.close();
  }
}
