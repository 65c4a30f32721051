/**
 * Builds the services from the config and the store, starts and stops them.
 * Services share one cluster model, one store, one logger and one metrics
 * registry; nothing else passes between them.
 */
import type { RootDiskProvider } from './boot/ipxe-script.ts';
import { ClusterModel } from './cluster/model.ts';
import { BootTimelines } from './cluster/timeline.ts';
import type { Config } from './config/load.ts';
import { createLogger, type Logger } from './log.ts';
import { Metrics } from './metrics.ts';
import { DhcpService } from './services/dhcp/service.ts';
import { DnsService } from './services/dns/service.ts';
import { HttpService } from './services/http/service.ts';
import { IscsiService } from './services/iscsi/service.ts';
import { NtpService } from './services/ntp/service.ts';
import { IpxeScripts } from './services/tftp/ipxe-scripts.ts';
import { PxelinuxConfigs } from './services/tftp/pxelinux.ts';
import { TftpService } from './services/tftp/service.ts';
import { EmbeddedStore } from './store/embedded.ts';
import type { Store } from './store/store.ts';

export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** What `bootherd status` and the API's /status (and /ntp) show about the service (optional). */
  status?(): object;
}

export interface ServerOptions {
  readonly log?: Logger;
  readonly store?: Store;
  /** Open a damaged state directory by moving damaged lines aside (src/store/embedded.ts). */
  readonly repairStore?: boolean;
}

/** The HTTP base URL nodes are given (iPXE scripts, kernels, UEFI HTTP loaders). */
export function httpBaseOf(config: Config): string {
  if (config.http.baseUrl) return config.http.baseUrl.replace(/\/$/, '');
  const scheme = config.http.tls ? 'https' : 'http';
  return `${scheme}://${config.head.address}${config.http.port === (config.http.tls ? 443 : 80) ? '' : `:${config.http.port}`}`;
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
  private readonly services: Service[] = [];

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
    // Nodes' iPXE scripts reach their root disks through the iSCSI service (built below; asked per script).
    const rootDisk: RootDiskProvider = (node) => this.iscsi?.rootDiskBoot(node);
    if (this.config.dhcp.enabled) {
      this.dhcp = new DhcpService({ config: this.config, model: this.model, store: this.store, log: this.log, metrics: this.metrics, timelines: this.timelines, httpBase, rootPath: (node) => this.iscsi?.rootPath(node) });
      this.services.push(this.dhcp);
    }
    if (this.config.tftp.enabled) {
      const rendered = [new PxelinuxConfigs(this.model, httpBase), new IpxeScripts(this.model, httpBase, rootDisk)];
      this.tftp = new TftpService({ config: this.config, model: this.model, store: this.store, log: this.log, metrics: this.metrics, timelines: this.timelines, rendered });
      this.services.push(this.tftp);
    }
    if (this.config.dns.enabled) {
      this.dns = new DnsService({ config: this.config, model: this.model, store: this.store, log: this.log, metrics: this.metrics });
      this.services.push(this.dns);
    }
    if (this.config.ntp.enabled) {
      this.ntp = new NtpService({ config: this.config, log: this.log, metrics: this.metrics });
      this.services.push(this.ntp);
    }
    // Always built: with iscsi.enabled false or no backend it stays off and its status() says why.
    this.iscsi = new IscsiService({ config: this.config, model: this.model, log: this.log, metrics: this.metrics });
    this.services.push(this.iscsi);
    if (this.config.http.enabled) {
      this.http = new HttpService({
        config: this.config, model: this.model, store: this.store, log: this.log, metrics: this.metrics, timelines: this.timelines, httpBase,
        leases: this.dhcp?.leases, serviceStatus: () => this.serviceStatus(), rootDisk,
      });
      this.services.push(this.http);
    }
  }

  /**
   * Each service's status under the name of its field on this server (dhcp,
   * http, ntp, ...), so a service added later shows up without changes here.
   */
  serviceStatus(): Record<string, object> {
    const out: Record<string, object> = {};
    for (const [name, value] of Object.entries(this)) {
      const service = this.services.find((s) => s === value);
      if (service) out[name] = service.status?.() ?? { running: true };
    }
    return out;
  }

  async start(): Promise<void> {
    await this.open();
    try {
      for (const s of this.services) await s.start();
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.log.info({ config: this.config.source, state: this.config.stateDir, nodes: this.model.nodeCount() }, 'bootherd started');
  }

  async stop(): Promise<void> {
    for (const s of [...this.services].reverse()) {
      try { await s.stop(); } catch (e) { this.log.warn({ err: e }, 'service stop failed'); }
    }
    await this.store.close();
  }
}
