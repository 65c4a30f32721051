/**
 * The DHCP service: sockets at the edge, a chain of small handlers in the
 * middle. A request is decoded, classified (subnet, node), decided (lease
 * state machine), dressed (network and boot options), made durable if it
 * grants a lease, and only then answered.
 */
import os from 'node:os';
import { decode, DhcpDecodeError, hardwareAddress, type DhcpMessage } from '../../../protocols/dhcp/codec.ts';
import { MESSAGE_TYPE_NAMES, MessageType, Opt, readU8 } from '../../../protocols/dhcp/options.ts';
import type { Subnet } from '../../cluster/model.ts';
import type { NodeRecord } from '../../cluster/types.ts';
import type { Logger } from '../../log.ts';
import type { Series } from '../../metrics.ts';
import { cidrContains, intToIp, ipToInt } from '../../net/ipv4.ts';
import { macFromBytes } from '../../net/mac.ts';
import { UdpBatchSocket } from '../../net/udp-batch.ts';
import { StoreUnavailableError } from '../../store/store.ts';
import type { Service, ServiceDeps } from '../service.ts';
import { serverOnly, type DhcpContext, type Handler } from './context.ts';
import { answerOnlyAsChosen } from './handlers/answer.ts';
import { bootOptions } from './handlers/boot.ts';
import { leaseHandler } from './handlers/lease.ts';
import { networkOptions } from './handlers/network.ts';
import { matchNode } from './handlers/node.ts';
import { proxyDecision } from './handlers/proxy.ts';
import { rootPathOption } from './handlers/root-path.ts';
import { selectSubnet } from './handlers/subnet.ts';
import { cursorStartOf, type DhcpHeads } from './heads.ts';
import { ClaimLostError, LeaseTable } from './leases.ts';
import { buildReply, nakInsteadOf, replyDestination, withLeaseTime, type Destination } from './reply.ts';

export interface DhcpServiceDeps extends ServiceDeps {
  /** Base URL of the HTTP service, for iPXE script and UEFI HTTP boot URLs. */
  readonly httpBase: string;
  /** A node's iSCSI root path (option 17), from the iSCSI service. */
  readonly rootPath?: (node: NodeRecord) => string | undefined;
  /**
   * Several heads: the live heads, from the server's head registry; then
   * only the head a client's MAC hashes to answers its broadcasts. Without
   * it every head answers (the store's claims still decide every address).
   */
  readonly heads?: DhcpHeads;
}

/** Where yiaddr sits in a DHCP message (op, htype, hlen, hops, xid, secs, flags, ciaddr before it). */
const YIADDR_OFFSET = 16;

const RECEIVE_BUFFER = 16 << 20;

interface Reply {
  readonly socket: UdpBatchSocket;
  readonly bytes: Buffer;
  readonly address: number;
  readonly port: number;
  readonly type: number;
  readonly after: ReadonlyArray<() => void>;
}

export class DhcpService implements Service {
  readonly leases: LeaseTable;
  private readonly chain: Handler[];
  private readonly sockets: Array<{ socket: UdpBatchSocket; iface: string | undefined }> = [];
  private readonly serverIds = new Map<Subnet, number>();
  private readonly received: (type: string) => Series;
  private readonly sent: (type: string) => Series;
  private readonly dropped: (reason: string) => Series;
  private readonly unanswered: (reason: string) => Series;
  private readonly renewedUnsaved: Series;
  private readonly log: Logger;

  constructor(private readonly deps: DhcpServiceDeps) {
    const { config, model, store } = deps;
    this.log = deps.log.child({ svc: 'dhcp' });
    const m = deps.metrics;
    const claims = m.counter('bootherd_dhcp_claims_total', 'Address claims in the shared store (several heads), by outcome').by('outcome');
    this.leases = new LeaseTable(model, store, {
      offerMs: config.dhcp.offerTime * 1000, declineMs: config.dhcp.declineTime * 1000,
      claimed: (outcome) => { claims(outcome).value++; },
    }, config.dhcp.limits, deps.heads ? cursorStartOf(deps.heads.self) : 0);
    const onError = (e: Error) => (e instanceof ClaimLostError ? this.log.debug({ err: e }, 'lease write refused by the store') : this.log.error({ err: e }, 'lease write failed'));
    const refused = m.counter('bootherd_dhcp_limit_refused_total', 'New pool leases refused by dhcp.limits, by limit (port, relay, interface)').by('limit');
    this.chain = [
      selectSubnet(model, (s) => this.serverIdOf(s)),
      matchNode(model),
      ...(deps.heads ? [answerOnlyAsChosen(deps.heads)] : []),
      proxyDecision((node, ip, from, now) => model.learnAddress(node, intToIp(ip), from, now)),
      serverOnly(leaseHandler(this.leases, { authoritative: config.dhcp.authoritative, onError, limits: config.dhcp.limits, refused: (limit) => { refused(limit).value++; } })),
      serverOnly(networkOptions(model.domain)),
      bootOptions(model, deps.httpBase, config.dhcp.bootUnknown, deps.timelines),
      ...(deps.rootPath ? [rootPathOption(deps.rootPath)] : []),
    ];
    this.received = m.counter('bootherd_dhcp_received_total', 'DHCP requests received, by message type').by('type');
    this.sent = m.counter('bootherd_dhcp_sent_total', 'DHCP replies sent, by message type').by('type');
    this.dropped = m.counter('bootherd_dhcp_dropped_total', 'DHCP datagrams dropped, by reason').by('reason');
    this.unanswered = m.counter('bootherd_dhcp_unanswered_total', 'Decided replies not sent because the store did not give the address, by reason').by('reason');
    this.renewedUnsaved = m.counter('bootherd_dhcp_unsaved_renewals_total', 'Renewals ACKed while the store could not be written, for the time left on the recorded lease').with();
    m.gaugeFn('bootherd_dhcp_leases', 'Lease records held (bound, released, declined)', () => store.size('leases'));
    for (const subnet of model.subnets) {
      if (!subnet.pool) continue;
      m.gaugeFn('bootherd_dhcp_pool_free', 'Pool addresses a new client could be given, by subnet', () => this.leases.poolUsage(subnet, Date.now()).free, { subnet: subnet.cidr.text });
      m.gaugeFn('bootherd_dhcp_pool_declined', 'Pool addresses quarantined after a DECLINE, by subnet', () => this.leases.poolUsage(subnet, Date.now()).declined, { subnet: subnet.cidr.text });
    }
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
    const strays = await this.leases.pruneStrayDeclines();
    if (strays) this.log.warn({ removed: strays }, 'removed declined lease records outside every pool (made by DECLINEs before they were checked)');
    const ifaces = model.subnets.filter((s) => s.interface).map((s) => s.interface!);
    // Batched sockets (recvmmsg): one crossing into JavaScript per batch of
    // datagrams instead of one per datagram, which is most of the cost at load.
    // A 16 MiB receive buffer: a cluster powering on sends ten thousand DISCOVERs
    // within a second, and each one that overflows returns as a retransmission
    // (docs/dhcp.md#what-was-measured-on-the-reply-path).
    for (const iface of ifaces) {
      this.attach(UdpBatchSocket.open({ address: '0.0.0.0', port: config.dhcp.port, device: iface, broadcast: true, reuseAddr: true, recvBufferSize: RECEIVE_BUFFER, slotSize: 1536 }), iface);
    }
    if (!ifaces.length) {
      // Only relayed subnets: listen for unicast from relays on the head's address; broadcasts never reach this socket.
      this.attach(UdpBatchSocket.open({ address: config.head.address, port: config.dhcp.port, recvBufferSize: RECEIVE_BUFFER, slotSize: 1536 }), undefined);
    }
    const proxy = model.subnets.some((s) => s.mode === 'proxy');
    if (proxy) {
      // The PXE boot server: clients that have their address unicast here, from their own network or through routers.
      const socket = UdpBatchSocket.open({ address: '0.0.0.0', port: config.dhcp.bootServerPort, reuseAddr: true, slotSize: 1536 });
      this.sockets.push({ socket, iface: undefined });
      socket.start((datagram, address, port) => {
        this.onDatagram(socket, undefined, datagram, { address, port });
        return undefined;
      }, () => this.drop('oversized'));
    }
    this.log.info({ interfaces: ifaces, port: config.dhcp.port, ...(proxy ? { bootServerPort: config.dhcp.bootServerPort } : {}), subnets: model.subnets.map((s) => `${s.cidr.text}${s.mode === 'proxy' ? ' (proxy)' : ''}`) }, 'DHCP listening');
  }

  private attach(socket: UdpBatchSocket, iface: string | undefined): void {
    this.sockets.push({ socket, iface });
    socket.start((datagram) => {
      this.onDatagram(socket, iface, datagram);
      return undefined; // replies are queued on the socket: they go to the relay, the broadcast or the client, not always to the sender
    }, () => this.drop('oversized'));
  }

  /**
   * Answers one request. `datagram` is a view into the batch buffer, valid
   * only during this call: the decision and the reply bytes are made now,
   * and only the durable write is waited for. A reply that needs no write
   * (OFFER, NAK, INFORM's ACK) leaves with the batch's sendmmsg; an ACK
   * waits for its lease to be on disk, and the ACKs of one group commit
   * leave together.
   */
  private onDatagram(socket: UdpBatchSocket, iface: string | undefined, datagram: Buffer, bootServer?: Destination): void {
    const ctx = this.handle(datagram, iface, Date.now(), this.log.isLevelEnabled('debug'), bootServer);
    if (!ctx) return;
    if (ctx.trace) this.log.debug({ xid: ctx.req.xid, mac: ctx.mac, type: MESSAGE_TYPE_NAMES[ctx.type], why: ctx.trace }, 'DHCP decision');
    if (ctx.replyType === undefined) { for (const f of ctx.after) f(); return; }
    const { bytes, dropped } = buildReply(ctx);
    if (dropped.length) this.log.warn({ mac: ctx.mac, dropped }, 'reply options did not fit the client\'s size limit');
    const to = replyDestination(ctx, this.deps.config.dhcp.port, this.deps.config.dhcp.clientPort);
    const reply: Reply = { socket, bytes, address: to.address, port: to.port, type: ctx.replyType, after: ctx.after };
    if (ctx.claim) { this.sendOnceClaimed(ctx.claim, reply, ctx.mac); return; }
    if (!ctx.commit) { this.send(reply); return; }
    // Every waiter of one group commit resolves in the same turn: their ACKs
    // fill the socket's send slots together and leave at once, one sendmmsg per
    // 64 (pacing them was slower: docs/dhcp.md#what-was-measured-on-the-reply-path).
    ctx.commit().then(() => this.send(reply), (e: Error) => {
      if (e instanceof ClaimLostError) {
        this.unanswered('claim-lost').value++;
        this.log.debug({ err: e, mac: ctx.mac }, 'the store gave the address to another client (or the client holds another); NAK instead of ACK');
        this.nakInstead(ctx, reply, e.message);
      } else if (e instanceof StoreUnavailableError && this.renewUnsaved(ctx, reply)) {
        this.log.debug({ mac: ctx.mac, ip: intToIp(ctx.yiaddr) }, 'store unreachable: renewal ACKed for the time left on the recorded lease');
      } else {
        this.unanswered('store-error').value++;
        this.log.error({ err: e, mac: ctx.mac }, 'lease write failed; no ACK sent');
      }
    });
  }

  /**
   * The store cannot be written (etcd unreachable or this head cut off): a
   * client renewing a binding this head can see still gets its ACK, for the
   * time left on the recorded lease and no longer, so no head can give the
   * address away while the client believes it holds it. New bindings wait.
   */
  private renewUnsaved(ctx: DhcpContext, reply: Reply): boolean {
    const left = this.leases.boundSecondsLeft(ctx.yiaddr, ctx.clientKey, Date.now());
    if (left < 1) return false;
    this.send({ ...reply, bytes: withLeaseTime(reply.bytes, left) });
    this.renewedUnsaved.value++;
    return true;
  }

  /**
   * The binding an ACK promised lost its claim: the client is told at once
   * (RFC 2131: the server cannot give the requested address) and starts over
   * with a DISCOVER, which is offered what the store holds for it.
   */
  private nakInstead(ctx: DhcpContext, reply: Reply, why: string): void {
    if (!this.deps.config.dhcp.authoritative) return;
    ctx.replyType = MessageType.NAK;
    const to = replyDestination(ctx, this.deps.config.dhcp.port, this.deps.config.dhcp.clientPort);
    this.send({ socket: reply.socket, bytes: nakInsteadOf(reply.bytes, why), address: to.address, port: to.port, type: MessageType.NAK, after: [] });
  }

  /**
   * Shared store: the OFFER leaves only for the address the store holds for
   * the client; the claim may have moved on to another candidate, so the
   * built reply's yiaddr is set to the one won (no other option names it).
   */
  private sendOnceClaimed(claim: () => Promise<number | undefined>, reply: Reply, mac: string): void {
    claim().then((ip) => {
      if (ip === undefined) { this.unanswered('no-address-claimed').value++; return; }
      reply.bytes.writeUInt32BE(ip, YIADDR_OFFSET);
      this.send(reply);
    }, (e: Error) => {
      this.unanswered('store-error').value++;
      this.log.warn({ err: e, mac }, 'address claim failed; no OFFER sent');
    });
  }

  private send(r: Reply): void {
    r.socket.queue(r.bytes, r.address, r.port);
    this.sent(MESSAGE_TYPE_NAMES[r.type] ?? String(r.type)).value++;
    for (const f of r.after) f();
  }

  /**
   * Runs one datagram through decode and the handler chain. Returns undefined
   * for anything dropped (and counts why). Pure but for the lease table's
   * offer bookkeeping; `explain` uses it as a dry run.
   */
  handle(buf: Buffer, iface: string | undefined, now: number, trace: boolean, bootServer?: Destination): DhcpContext | undefined {
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
    this.received(MESSAGE_TYPE_NAMES[type] ?? 'other').value++;
    const mac = req.hlen > 0 && req.htype === 1 ? macFromBytes(hardwareAddress(req), 0, Math.min(req.hlen, 6)) : '';
    const clientId = req.options.get(Opt.CLIENT_ID);
    if (!mac && !clientId) return this.drop('no-client-identity');
    const ctx: DhcpContext = {
      req, type, mac,
      clientKey: mac || `id:${clientId!.toString('hex')}`,
      iface, now,
      ...(bootServer ? { bootServer } : {}),
      serverId: this.deps.model.headAddress,
      yiaddr: 0, leaseTime: 0, siaddr: 0, file: '',
      options: new Map(),
      after: [],
      trace: trace ? [] : undefined,
    };
    for (const h of this.chain) if (!h(ctx)) break;
    if (ctx.drop !== undefined) this.drop(ctx.drop);
    return ctx;
  }

  private drop(reason: string): undefined {
    this.dropped(reason).value++;
    return undefined;
  }

  async stop(): Promise<void> {
    await Promise.all(this.sockets.map(({ socket }) => socket.close()));
    this.sockets.length = 0;
  }
}
