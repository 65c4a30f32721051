/**
 * The DNS service: authoritative for the cluster domain and the reverse
 * zones of its subnets, a forwarder with a cache for everything else (to
 * the cluster's own networks only), on UDP and TCP. The records come from
 * the cluster model through the zone source; UDP is answered in the main
 * event loop, or by worker threads sharing the port when dns.workers > 1.
 * TCP stays in the main thread (Node 20's net module cannot share a port).
 */
import type { Logger } from '../../log.ts';
import { parseCidr } from '../../net/ipv4.ts';
import { UdpBatchSocket } from '../../net/udp-batch.ts';
import type { Service, ServiceDeps } from '../service.ts';
import { RecursionAcl } from './acl.ts';
import { registryCounters, type DnsCounters } from './counters.ts';
import { serveUdp, TcpListener } from './listeners.ts';
import { DnsResponder, type ResponderOptions } from './responder.ts';
import { WorkerPool } from './workers.ts';
import { ZoneSource } from './zone-source.ts';

export class DnsService implements Service {
  readonly zones: ZoneSource;
  /** The main thread's responder: TCP always, UDP too when there are no workers. */
  readonly responder: DnsResponder;
  readonly counters: DnsCounters;
  private readonly log: Logger;
  private readonly tcp: TcpListener;
  private udp: UdpBatchSocket | undefined;
  private pool: WorkerPool | undefined;

  constructor(private readonly deps: ServiceDeps) {
    const { config, model, store, metrics } = deps;
    const dns = config.dns;
    this.log = deps.log.child({ svc: 'dns' });
    this.zones = new ZoneSource(model, store, config, this.log);
    this.counters = registryCounters(metrics);
    metrics.gaugeFn('bootherd_dns_cache_entries', 'Forwarded answers held in the main thread\'s cache', () => this.responder.cache.size);
    this.responder = new DnsResponder({
      ...this.responderOptions(),
      acl: new RecursionAcl(this.recursionNetworks().map(parseCidr)),
      zones: () => this.zones.index(),
      counters: this.counters,
      log: this.log,
    });
    const tcpClosed = metrics.counter('bootherd_dns_tcp_closed_total', 'DNS TCP connections closed by the server, by reason').by('reason');
    this.tcp = new TcpListener((raw, client, transport) => this.responder.respond(raw, client, transport), {
      idleMs: dns.tcpIdleTimeout * 1000,
      messageMs: dns.tcpMessageTimeout * 1000,
      connections: dns.tcpConnections,
      perClient: dns.tcpConnectionsPerClient,
    }, (reason) => { tcpClosed(reason).value++; }, this.log);
  }

  private responderOptions(): Pick<ResponderOptions, 'upstreams' | 'upstreamTimeoutMs' | 'cache' | 'ednsUdpSize'> {
    const dns = this.deps.config.dns;
    return { upstreams: dns.upstreams, upstreamTimeoutMs: dns.upstreamTimeout * 1000, cache: dns.cache, ednsUdpSize: dns.ednsUdpSize };
  }

  private recursionNetworks(): string[] {
    return [...this.deps.model.subnets.map((s) => s.cidr.text), ...this.deps.config.dns.allowRecursion];
  }

  async start(): Promise<void> {
    const { config } = this.deps;
    const { address, port, workers } = config.dns;
    await this.responder.start();
    try {
      if (workers > 1) {
        this.pool = new WorkerPool(workers, {
          address, port, logLevel: config.log.level, responder: this.responderOptions(), recursionNetworks: this.recursionNetworks(),
        }, this.zones, this.counters, this.log);
        await this.pool.start();
      } else {
        this.udp = UdpBatchSocket.open({ address, port, recvBufferSize: 4 << 20 });
        serveUdp(this.udp, (raw, client, transport) => this.responder.respond(raw, client, transport), this.counters, this.log);
      }
      await this.tcp.listen(address, port);
    } catch (e) {
      await this.stop();
      throw new Error(`DNS cannot listen on ${address}:${port}: ${(e as Error).message}`);
    }
    const zone = this.zones.current();
    this.log.info({ address, port, workers, zones: zone.origins, records: zone.records.length, upstreams: config.dns.upstreams.map((u) => `${u.address}:${u.port}`) }, 'DNS listening');
  }

  async stop(): Promise<void> {
    await this.pool?.stop();
    this.pool = undefined;
    await this.udp?.close();
    this.udp = undefined;
    await this.tcp.close().catch(() => undefined);
    await this.responder.stop();
    this.zones.close();
  }
}
