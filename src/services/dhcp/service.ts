/**
 * The DHCP service: sockets at the edge, a chain of small handlers in the
 * middle. A request is decoded, classified (subnet, node), decided (lease
 * state machine), dressed (network and boot options), made durable if it
 * grants a lease, and only then answered.
 */
import os from 'node:os';
import { decode, DhcpDecodeError, hardwareAddress, type DhcpMessage } from '../../../protocols/dhcp/codec.ts';
import { MESSAGE_TYPE_NAMES, Opt, readU8 } from '../../../protocols/dhcp/options.ts';
import type { ClusterModel, Subnet } from '../../cluster/model.ts';
import type { NodeRecord } from '../../cluster/types.ts';
import type { BootTimelines } from '../../cluster/timeline.ts';
import type { Config } from '../../config/load.ts';
import type { Logger } from '../../log.ts';
import type { Metrics } from '../../metrics.ts';
import { cidrContains, intToIp, ipToInt } from '../../net/ipv4.ts';
import { macFromBytes } from '../../net/mac.ts';
import { UdpBatchSocket } from '../../net/udp-batch.ts';
import type { Store } from '../../store/store.ts';
import type { DhcpContext, Handler } from './context.ts';
import { bootOptions } from './handlers/boot.ts';
import { leaseHandler } from './handlers/lease.ts';
import { networkOptions } from './handlers/network.ts';
import { matchNode } from './handlers/node.ts';
import { rootPathOption } from './handlers/root-path.ts';
import { selectSubnet } from './handlers/subnet.ts';
import { LeaseTable } from './leases.ts';
import { buildReply, replyDestination } from './reply.ts';

export interface DhcpServiceDeps {
  readonly config: Config;
  readonly model: ClusterModel;
  readonly store: Store;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly timelines?: BootTimelines;
  /** Base URL of the HTTP service, for iPXE script and UEFI HTTP boot URLs. */
  readonly httpBase: string;
  /** A node's iSCSI root path (option 17), from the iSCSI service. */
  readonly rootPath?: (node: NodeRecord) => string | undefined;
}

export class DhcpService {
  readonly leases: LeaseTable;
  private readonly chain: Handler[];
  private readonly sockets: Array<{ socket: UdpBatchSocket; iface: string | undefined }> = [];
  private readonly serverIds = new Map<Subnet, number>();
  private readonly received;
  private readonly sent;
  private readonly dropped;
  private readonly log: Logger;

  constructor(private readonly deps: DhcpServiceDeps) {
    const { config, model, store } = deps;
    this.log = deps.log.child({ svc: 'dhcp' });
    this.leases = new LeaseTable(model, store, { offerMs: config.dhcp.offerTime * 1000, declineMs: config.dhcp.declineTime * 1000 });
    const onError = (e: Error) => this.log.error({ err: e }, 'lease write failed');
    this.chain = [
      selectSubnet(model, (s) => this.serverIdOf(s)),
      matchNode(model),
      leaseHandler(this.leases, { authoritative: config.dhcp.authoritative, onError }),
      networkOptions(model.domain),
      bootOptions(model, deps.httpBase, config.dhcp.bootUnknown, deps.timelines),
      ...(deps.rootPath ? [rootPathOption(deps.rootPath)] : []),
    ];
    const m = deps.metrics;
    this.received = m.counter('bootherd_dhcp_received_total', 'DHCP requests received, by message type');
    this.sent = m.counter('bootherd_dhcp_sent_total', 'DHCP replies sent, by message type');
    this.dropped = m.counter('bootherd_dhcp_dropped_total', 'DHCP datagrams dropped, by reason');
    m.gaugeFn('bootherd_dhcp_leases', 'Lease records held (bound, released, declined)', () => store.size('leases'));
  }

  /**
   * Server identifier per subnet: our own address on the subnet's interface
   * if it has one there, else the head's configured address.
   */
  serverIdOf(subnet: Subnet): number {
    let id = this.serverIds.get(subnet);
    if (id === undefined) {
      id = this.deps.model.headAddress;
      for (const a of (subnet.interface && os.networkInterfaces()[subnet.interface]) || []) {
        if (a.family === 'IPv4' && cidrContains(subnet.cidr, ipToInt(a.address))) { id = ipToInt(a.address); break; }
      }
      this.serverIds.set(subnet, id);
    }
    return id;
  }

  async start(): Promise<void> {
    const { config, model } = this.deps;
    const ifaces = model.subnets.filter((s) => s.interface).map((s) => s.interface!);
    // Batched sockets (recvmmsg): one crossing into JavaScript per batch of
    // datagrams instead of one per datagram, which is most of the cost at load.
    for (const iface of ifaces) {
      this.attach(UdpBatchSocket.open({ address: '0.0.0.0', port: config.dhcp.port, device: iface, broadcast: true, reuseAddr: true, recvBufferSize: 4 << 20, slotSize: 1536 }), iface);
    }
    if (!ifaces.length) {
      // Only relayed subnets: listen for unicast from relays on the head's address; broadcasts never reach this socket.
      this.attach(UdpBatchSocket.open({ address: config.head.address, port: config.dhcp.port, recvBufferSize: 4 << 20, slotSize: 1536 }), undefined);
    }
    this.log.info({ interfaces: ifaces, port: config.dhcp.port, subnets: model.subnets.map((s) => s.cidr.text) }, 'DHCP listening');
  }

  private attach(socket: UdpBatchSocket, iface: string | undefined): void {
    this.sockets.push({ socket, iface });
    socket.start((datagram) => {
      // The datagram is a view into the batch buffer, valid only now; an ACK is sent after its lease is on disk.
      this.onDatagram(socket, iface, Buffer.from(datagram)).catch((e: Error) => this.log.error({ err: e }, 'DHCP request failed'));
      return undefined;
    }, () => this.drop('oversized'));
  }

  private async onDatagram(socket: UdpBatchSocket, iface: string | undefined, buf: Buffer): Promise<void> {
    const ctx = this.handle(buf, iface, Date.now(), this.log.isLevelEnabled('debug'));
    if (!ctx) return;
    if (ctx.trace) this.log.debug({ xid: ctx.req.xid, mac: ctx.mac, type: MESSAGE_TYPE_NAMES[ctx.type], why: ctx.trace }, 'DHCP decision');
    if (ctx.replyType === undefined) return;
    const { bytes, dropped } = buildReply(ctx);
    if (dropped.length) this.log.warn({ mac: ctx.mac, dropped }, 'reply options did not fit the client\'s size limit');
    if (ctx.commit) await ctx.commit(); // durable before the ACK leaves
    const to = replyDestination(ctx, this.deps.config.dhcp.port, this.deps.config.dhcp.clientPort);
    const err = socket.sendTo(bytes, ipToInt(to.address), to.port);
    if (err) this.log.warn({ errno: err, to }, 'DHCP reply not sent');
    this.sent.with({ type: MESSAGE_TYPE_NAMES[ctx.replyType] ?? String(ctx.replyType) }).value++;
    for (const f of ctx.after) f();
  }

  /**
   * Runs one datagram through decode and the handler chain. Returns undefined
   * for anything dropped (and counts why). Pure but for the lease table's
   * offer bookkeeping; `explain` uses it as a dry run.
   */
  handle(buf: Buffer, iface: string | undefined, now: number, trace: boolean): DhcpContext | undefined {
    let req: DhcpMessage;
    try {
      req = decode(buf);
    } catch (e) {
      this.drop(e instanceof DhcpDecodeError ? e.reason : 'decode');
      return undefined;
    }
    if (req.op !== 1) return this.drop('not-request');
    const type = readU8(req.options.get(Opt.MESSAGE_TYPE));
    if (type === undefined) return this.drop('bootp'); // plain BOOTP: not served
    this.received.with({ type: MESSAGE_TYPE_NAMES[type] ?? 'other' }).value++;
    const mac = req.hlen > 0 && req.htype === 1 ? macFromBytes(hardwareAddress(req), 0, Math.min(req.hlen, 6)) : '';
    const clientId = req.options.get(Opt.CLIENT_ID);
    if (!mac && !clientId) return this.drop('no-client-identity');
    const ctx: DhcpContext = {
      req, type, mac,
      clientKey: mac || `id:${clientId!.toString('hex')}`,
      iface, now,
      serverId: this.deps.model.headAddress,
      yiaddr: 0, leaseTime: 0, siaddr: 0, file: '',
      options: new Map(),
      after: [],
      trace: trace ? [] : undefined,
    };
    for (const h of this.chain) if (!h(ctx)) break;
    return ctx;
  }

  private drop(reason: string): undefined {
    this.dropped.with({ reason }).value++;
    return undefined;
  }

  async stop(): Promise<void> {
    await Promise.all(this.sockets.map(({ socket }) => socket.close()));
    this.sockets.length = 0;
  }
}
