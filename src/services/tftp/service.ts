/**
 * The TFTP service: sockets at the edges, the request checks, the resolver
 * and the transfer engine in between.
 *
 * A request arrives on the listening socket (port 69), goes through the
 * checks (writes refused, mode, name confinement), waits for a slot under
 * the cap on concurrent transfers, has its file resolved and its options
 * negotiated, and becomes a transfer.
 *
 * Every transfer is served from a socket of its own, bound to a port the
 * kernel picks at random among the ephemeral ports: that port is the
 * server's transfer ID (RFC 1350), and a client's ACK to it is the proof
 * that the client receives our packets. A forged ACK cannot give that proof
 * without seeing them, so a spoofed request draws only the first packet (an
 * OACK or DATA 1) towards its victim, never a window (docs/tftp.md#security:
 * one shared, learnable transfer port let blind ACKs release 64-block
 * windows at a victim). The socket is the native batch socket
 * (src/net/udp-batch.ts): the ACKs of one wake-up are read with one
 * recvmmsg and handled in one call into JavaScript. On each:
 * - the TID check: a datagram from another address or port gets ERROR 5
 *   "Unknown transfer ID" and disturbs nothing (RFC 1350);
 * - the client is gone: the socket has IP_RECVERR, so an ICMP port
 *   unreachable about a DATA we sent ends the transfer at once (other ICMP
 *   errors are left to the retransmission timer and the deadline).
 *
 * Windows whose DATA packets each fit a frame leave in one sendmsg with a
 * UDP_SEGMENT control message (UDP GSO): the kernel cuts the window into
 * packets, so a window costs one trip through the stack.
 *
 * Refusals (missing file, access violation, writes) are answered from the
 * listening socket.
 *
 * One timer for all transfers checks retransmissions and deadlines every
 * TICK_MS while any transfer runs; ACKs are handled as they arrive.
 */
import type dgram from 'node:dgram';
import type { RemoteInfo } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { DATA_HEADER_LENGTH, decode, encodeError, encodeOack, ErrorCode, Op, TftpDecodeError, type TftpPacket } from '../../../protocols/tftp/codec.ts';
import type { NodeRecord } from '../../cluster/types.ts';
import { LOADERS_DIR } from '../../config/schema.ts';
import type { Logger } from '../../log.ts';
import { intToIp, ipToInt } from '../../net/ipv4.ts';
import { openUdp } from '../../net/udp.ts';
import { UdpBatchSocket } from '../../net/udp-batch.ts';
import type { Service, ServiceDeps } from '../service.ts';
import { Admission } from './admission.ts';
import type { Handler, Refusal, TftpRequestContext } from './context.ts';
import { confineName } from './handlers/name.ts';
import { negotiate } from './handlers/options.ts';
import { checkMode, refuseWrites } from './handlers/request.ts';
import { FileResolver, type FileRoot, type RenderedFile, type ResolvedFile } from './resolver.ts';
import { Transfer, type Send } from './transfer.ts';

/** Granularity of retransmission and deadline checks; small against the 20 ms shortest timeout. */
const TICK_MS = 10;
/** A queued request not repeated for this long is forgotten. */
const QUEUE_STALE_MS = 30_000;
/**
 * How long a transfer whose first packet (OACK or DATA 1) is never
 * acknowledged holds its slot: at least this, or three of our own timeouts,
 * or four of the client's declared timeout, so the OACK timer gets two
 * tries (transfer.ts)...
 */
const START_PATIENCE_MS = 5_000;
/** ...but never longer than this, whatever timeout the client asked for: a client that lost it asks again. */
const START_PATIENCE_MAX_MS = 20_000;
/** Datagrams a transfer's socket reads (and sends) per system call: a client has one ACK in flight, a few after a stall. */
const TRANSFER_SLOTS = 4;
/** A slot holds the largest DATA packet that fits a 1500-byte frame; larger DATA packets are sent on their own, uncopied. */
const TRANSFER_SLOT_SIZE = 1472;
/** A transfer socket's send buffer holds a few of its windows (a whole window leaves at once), within these bounds. */
const TRANSFER_SEND_BUFFER_MIN = 256 << 10;
const TRANSFER_SEND_BUFFER_MAX = 4 << 20;
/** File descriptors kept free for everything else (store, HTTP, DNS, logs): every running transfer holds one. */
const SPARE_FDS = 256;
const ERRNO = constants.errno;
/** What a send with UDP_SEGMENT fails with when the route's device or the kernel cannot segment it. */
const GSO_REFUSED = new Set([ERRNO.EIO, ERRNO.EINVAL, ERRNO.EMSGSIZE, ERRNO.EOPNOTSUPP]);
/** What a datagram from an address and port with no transfer gets (RFC 1350). */
const UNKNOWN_TID = encodeError(ErrorCode.UNKNOWN_TRANSFER_ID, 'Unknown transfer ID');
/** What a client that is given up on gets. */
const TIMED_OUT = encodeError(ErrorCode.UNDEFINED, 'timed out waiting for an ACK');
const DEADLINE_PASSED = encodeError(ErrorCode.UNDEFINED, 'transfer deadline passed');
/** Largest DATA packet that fits one 1500-byte Ethernet frame unfragmented (IP and UDP headers off): the limit for GSO. */
const GSO_MAX_PACKET = 1472;
/** UDP GSO limits: 64 segments (UDP_MAX_SEGMENTS), and the whole send in one IP datagram's length. */
const GSO_MAX_SEGMENTS = 64;
const GSO_MAX_BYTES = 65_507;

export interface TftpServiceDeps extends ServiceDeps {
  /** Files rendered from the cluster model (pxelinux.cfg/01-<mac>, the iPXE script), consulted before any directory. */
  readonly rendered?: readonly RenderedFile[];
}

/** A client's transfer ID as one number, the key of its session: IPv4 address x 65536 + port (below 2^48: exact). */
function clientKey(address: number, port: number): number {
  return address * 65536 + port;
}

/** The soft limit on open files, from /proc (Node has no getrlimit). */
function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Why a transfer ended. */
type Outcome = 'complete' | 'timeout' | 'deadline' | 'client-error' | 'options-refused' | 'client-gone' | 'failed' | 'stopped';

/** One client's read: its request, then its file, socket and engine once started. */
interface Session {
  /** clientKey of the client's address and port. */
  readonly key: number;
  readonly ctx: TftpRequestContext;
  file: ResolvedFile | undefined;
  /** The transfer's own socket; its random port is the server's transfer ID. */
  socket: UdpBatchSocket | undefined;
  transfer: Transfer | undefined;
  /** DATA packets (head, payload, head, payload, ...) of a window, sent by `flush` as one GSO send. */
  readonly window: Buffer[];
  /** Whether windows leave as GSO sends cut into packets of `packetSize`; false after the kernel refused one. */
  gso: boolean;
  packetSize: number;
  ended: boolean;
}

export class TftpService implements Service {
  readonly resolver: FileResolver;
  private readonly log: Logger;
  private readonly checks: readonly Handler[] = [refuseWrites, checkMode, confineName];
  private readonly sessions = new Map<number, Session>();
  private readonly admission: Admission<TftpRequestContext, number>;
  private readonly maxTransfers: number;
  /** Transfers running or waiting, per client address: at most tftp.maxTransfersPerClient. */
  private readonly perClient = new Map<number, number>();
  private listener: dgram.Socket | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly requests;
  private readonly refused;
  private readonly dropped;
  private readonly transfers;
  private readonly dataSent;
  private readonly retransmitted;
  private readonly bytesSent;
  private readonly duplicateAcks;

  constructor(private readonly deps: TftpServiceDeps) {
    const { config, metrics } = deps;
    const c = config.tftp;
    this.log = deps.log.child({ svc: 'tftp' });
    const roots: FileRoot[] = [
      ...(config.tftpRootDir ? [{ label: 'root', dir: config.tftpRootDir }] : []),
      { label: 'files', dir: config.filesDir },
      { label: 'loaders', dir: LOADERS_DIR },
    ];
    this.resolver = new FileResolver({ roots, rendered: deps.rendered ?? [], cacheBytes: c.cacheMiB * 1024 * 1024 });
    // Each running transfer holds a socket: the cap stays below the open-file limit.
    const fds = openFileLimit();
    this.maxTransfers = fds !== undefined && c.maxTransfers > fds - SPARE_FDS ? Math.max(1, fds - SPARE_FDS) : c.maxTransfers;
    if (this.maxTransfers < c.maxTransfers) {
      this.log.warn({ maxTransfers: c.maxTransfers, openFileLimit: fds, using: this.maxTransfers }, 'tftp.maxTransfers lowered: each transfer needs a socket and the open file limit is lower; raise it with ulimit -n');
    }
    this.admission = new Admission(this.maxTransfers, this.maxTransfers * 4, QUEUE_STALE_MS, (ctx) => this.unclaim(ctx.clientIp));

    this.requests = metrics.counter('bootherd_tftp_requests_total', 'TFTP requests received, by what became of them');
    this.refused = metrics.counter('bootherd_tftp_refused_total', 'TFTP requests answered with an error, by reason');
    this.dropped = metrics.counter('bootherd_tftp_dropped_total', 'TFTP datagrams dropped, by reason').by('reason');
    this.transfers = metrics.counter('bootherd_tftp_transfers_total', 'TFTP transfers ended, by outcome');
    this.dataSent = metrics.counter('bootherd_tftp_data_packets_total', 'DATA packets sent, retransmissions included').with();
    this.retransmitted = metrics.counter('bootherd_tftp_retransmitted_packets_total', 'DATA and OACK packets sent again after a timeout or a late duplicate ACK').with();
    this.bytesSent = metrics.counter('bootherd_tftp_bytes_total', 'File bytes acknowledged by clients').with();
    this.duplicateAcks = metrics.counter('bootherd_tftp_duplicate_acks_total', 'Duplicate ACKs ignored (Sorcerer\'s Apprentice guard)').with();
    metrics.gaugeFn('bootherd_tftp_active_transfers', 'TFTP transfers in progress', () => this.admission.running);
    metrics.gaugeFn('bootherd_tftp_queued_requests', 'TFTP requests waiting for a transfer slot', () => this.admission.queued);
    metrics.gaugeFn('bootherd_tftp_cache_bytes', 'Bytes of files held in memory for TFTP', () => this.resolver.cachedBytes);
  }

  /** The bound port (tftp.port, or the one the kernel chose for port 0). */
  get port(): number {
    return this.listener?.address().port ?? this.deps.config.tftp.port;
  }

  /** Transfers in progress (started or resolving). */
  get activeTransfers(): number { return this.admission.running; }

  async start(): Promise<void> {
    const c = this.deps.config.tftp;
    this.stopped = false;
    this.listener = await openUdp({ address: c.address, port: c.port, recvBufferSize: 4 << 20 });
    this.listener.on('message', (buf, rinfo) => this.onRequest(buf, rinfo));
    this.listener.on('error', (e) => this.log.error({ err: e }, 'TFTP socket error'));
    this.log.info({ address: c.address, port: this.port, maxTransfers: this.maxTransfers, maxBlockSize: c.maxBlockSize, maxWindowSize: c.maxWindowSize }, 'TFTP listening');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker) { clearInterval(this.ticker); this.ticker = undefined; }
    const sockets = [...this.sessions.values()].map((s) => s.socket?.close());
    for (const s of [...this.sessions.values()]) this.end(s, 'stopped');
    this.admission.clear();
    const l = this.listener;
    this.listener = undefined;
    if (l) await new Promise<void>((r) => l.close(() => r()));
    await Promise.all(sockets);
  }

  private drop(reason: string): void {
    this.dropped(reason).value++;
  }

  /** Decodes a datagram, or counts why it is malformed and returns undefined. */
  private decodeOrDrop(buf: Buffer): TftpPacket | undefined {
    try {
      return decode(buf);
    } catch (e) {
      this.drop(e instanceof TftpDecodeError ? e.reason : 'decode');
      return undefined;
    }
  }

  // ---- requests (listening socket) ----

  private onRequest(buf: Buffer, rinfo: RemoteInfo): void {
    const packet = this.decodeOrDrop(buf);
    if (!packet) return;
    if (packet.op !== Op.RRQ && packet.op !== Op.WRQ) { this.drop('not-a-request'); return; }
    const clientIp = ipToInt(rinfo.address);
    const key = clientKey(clientIp, rinfo.port);
    const now = performance.now();
    const running = this.sessions.get(key);
    if (running || this.admission.touch(key, now)) {
      // The client repeated its request: our first packet (OACK or DATA 1) has not reached it.
      this.requests.with({ result: 'repeated' }).value++;
      if (running?.transfer) { running.transfer.onRepeatedRequest(now); this.flush(running); }
      return;
    }
    const ctx: TftpRequestContext = {
      req: packet,
      clientIp,
      clientAddress: rinfo.address,
      clientPort: rinfo.port,
      netascii: false,
      name: '',
      trace: this.log.isLevelEnabled('debug') ? [] : undefined,
    };
    for (const h of this.checks) if (!h(ctx)) break;
    if (ctx.refusal) { this.refuse(ctx, ctx.refusal); return; }
    // One address cannot take every slot (or every place in the queue); its client asks again later.
    const held = this.perClient.get(clientIp) ?? 0;
    if (held >= this.deps.config.tftp.maxTransfersPerClient) { this.drop('client-limit'); return; }
    switch (this.admission.admit(key, ctx, now)) {
      case 'start':
        this.perClient.set(clientIp, held + 1);
        this.begin(ctx);
        break;
      case 'wait':
        this.perClient.set(clientIp, held + 1);
        this.requests.with({ result: 'queued' }).value++;
        ctx.trace?.push(`waiting for a transfer slot (${this.admission.running} running, ${this.admission.queued} waiting)`);
        break;
      case 'full':
        this.drop('queue-full');
        break;
    }
  }

  private refuse(ctx: TftpRequestContext, r: Refusal): void {
    this.refused.with({ reason: r.reason }).value++;
    if (ctx.trace) this.log.debug({ client: ctx.clientAddress, port: ctx.clientPort, file: ctx.req.filename, why: ctx.trace }, 'TFTP request refused');
    this.listener?.send(encodeError(r.code, r.message), ctx.clientPort, ctx.clientAddress);
  }

  /** Resolves the file, negotiates and sends the first packet. Holds an admission slot. */
  private begin(ctx: TftpRequestContext): void {
    const key = clientKey(ctx.clientIp, ctx.clientPort);
    const session: Session = { key, ctx, file: undefined, socket: undefined, transfer: undefined, window: [], gso: false, packetSize: 0, ended: false };
    this.sessions.set(key, session);
    if (!this.ticker) {
      this.ticker = setInterval(() => this.tick(), TICK_MS);
      this.ticker.unref();
    }
    this.requests.with({ result: 'started' }).value++;
    this.open(session).catch((e: Error) => {
      this.log.warn({ err: e, client: ctx.clientAddress, file: ctx.name }, 'TFTP transfer could not start');
      this.listener?.send(encodeError(ErrorCode.UNDEFINED, 'server error: transfer could not start'), ctx.clientPort, ctx.clientAddress);
      this.end(session, 'failed');
    });
  }

  private async open(session: Session): Promise<void> {
    const { ctx } = session;
    const c = this.deps.config.tftp;
    const resolution = await this.resolver.resolve(ctx.name, ctx.clientIp, ctx.netascii);
    if (session.ended) { if (resolution.ok) resolution.file.release(); return; }
    if (!resolution.ok) {
      ctx.trace?.push(`resolver: ${resolution.refusal.message}`);
      this.refuse(ctx, resolution.refusal);
      this.end(session, undefined);
      return;
    }
    const file = resolution.file;
    session.file = file;
    const n = negotiate(ctx.req.options, file.data.length, { maxBlockSize: c.maxBlockSize, maxWindowSize: c.maxWindowSize, timeoutMs: c.timeout * 1000 });
    // A window of full blocks leaves in one system call (UDP GSO) when each DATA packet fits a frame.
    session.packetSize = n.blockSize + DATA_HEADER_LENGTH;
    session.gso = n.windowSize > 1 && session.packetSize <= GSO_MAX_PACKET;
    // Port 0: the kernel picks a random free ephemeral port, which a blind attacker cannot know.
    const socket = UdpBatchSocket.open({
      address: c.address, port: 0, slots: TRANSFER_SLOTS, slotSize: TRANSFER_SLOT_SIZE, peerErrors: true,
      sendBufferSize: Math.min(TRANSFER_SEND_BUFFER_MAX, Math.max(TRANSFER_SEND_BUFFER_MIN, 4 * n.windowSize * session.packetSize)),
    });
    session.socket = socket;
    socket.start((msg, address, port) => this.onTransferDatagram(session, msg, address, port), () => this.drop('oversized'), (address, port, errno) => this.onPeerError(session, address, port, errno));
    const send: Send = (head, payload) => {
      if (payload && session.gso) session.window.push(head, payload);
      // Copied into a slot of the socket's next sendmmsg: the one ending the batch of ACKs being handled, or the next turn's.
      else socket.queueParts(head, payload, ctx.clientIp, ctx.clientPort);
    };
    const now = performance.now();
    // As long as `retries` retransmissions with doubling waits would take.
    const patienceMs = n.timeoutMs * (2 ** (c.retries + 1) - 1);
    const declaredTimeoutMs = n.granted.has('timeout') ? n.timeoutMs : undefined;
    session.transfer = new Transfer(file.data, {
      blockSize: n.blockSize,
      windowSize: n.windowSize,
      timeoutMs: n.timeoutMs,
      patienceMs,
      startPatienceMs: Math.min(patienceMs, START_PATIENCE_MAX_MS, Math.max(START_PATIENCE_MS, 3 * c.timeout * 1000, declaredTimeoutMs === undefined ? 0 : 4 * declaredTimeoutMs)),
      oackRetransmitMs: declaredTimeoutMs,
      deadlineMs: c.deadline * 1000,
    }, send, n.granted.size ? encodeOack(n.granted) : undefined, now);
    if (ctx.trace) {
      ctx.trace.push(`${file.origin}: ${file.data.length} bytes${ctx.netascii ? ' (netascii)' : ''}, blksize ${n.blockSize}, windowsize ${n.windowSize}, timeout up to ${n.timeoutMs} ms${n.granted.has('timeout') ? ' (the client\'s)' : ''}${n.granted.size ? `, OACK ${[...n.granted].map(([k, v]) => `${k}=${v}`).join(' ')}` : ', no options'}`);
      this.log.debug({ client: ctx.clientAddress, port: ctx.clientPort, file: ctx.name, why: ctx.trace }, 'TFTP transfer started');
    }
    session.transfer.start(now);
    this.flush(session);
  }

  /**
   * Sends the window the engine just produced (GSO transfers): whole runs per
   * system call, cut by the kernel. When the route's device refuses
   * segmentation offload, the transfer goes packet by packet from then on,
   * starting with the refused run.
   */
  private flush(session: Session): void {
    const window = session.window;
    const socket = session.socket;
    if (!window.length || !socket) { window.length = 0; return; }
    const { clientIp, clientPort } = session.ctx;
    const per = 2 * Math.min(GSO_MAX_SEGMENTS, Math.floor(GSO_MAX_BYTES / session.packetSize));
    for (let i = 0; i < window.length; i += per) {
      const run = window.length <= per ? window : window.slice(i, i + per);
      if (session.gso) {
        // EAGAIN (the socket's queue is full) and a peer's errors: the timer resends what was lost.
        const errno = socket.sendParts(run, clientIp, clientPort, session.packetSize);
        if (!GSO_REFUSED.has(errno)) continue;
        if (this.log.isLevelEnabled('debug')) this.log.debug({ errno, client: session.ctx.clientAddress }, 'TFTP: UDP GSO refused, sending packet by packet');
        session.gso = false;
      }
      for (let k = 0; k < run.length; k += 2) socket.queueParts(run[k]!, run[k + 1], clientIp, clientPort);
    }
    window.length = 0;
  }

  // ---- transfers (a socket each) ----

  /** A datagram on `session`'s socket, from `address`:`port`; returns a reply to send back in the batch's sendmmsg. */
  private onTransferDatagram(session: Session, buf: Buffer, address: number, port: number): Buffer | undefined {
    if (address !== session.ctx.clientIp || port !== session.ctx.clientPort) {
      // RFC 1350: a packet from an unknown transfer ID is answered with ERROR 5 and disturbs no transfer. An ERROR is never answered (no ping-pong).
      this.drop('unknown-tid');
      return buf.length >= 2 && buf[0] === 0 && buf[1] === Op.ERROR ? undefined : UNKNOWN_TID;
    }
    const t = session.transfer;
    if (!t) return undefined; // ended earlier in this batch
    // ACKs are nearly every packet: read them without building a packet object.
    if (buf.length >= 4 && buf[0] === 0 && buf[1] === Op.ACK) {
      const r = t.onAck(buf.readUInt16BE(2), performance.now());
      this.flush(session);
      if (r === 'complete') this.end(session, 'complete');
      else if (r === 'duplicate') this.duplicateAcks.value++;
      else if (r === 'stale') this.drop('stale-ack');
      return undefined;
    }
    const packet = this.decodeOrDrop(buf);
    if (!packet) return undefined;
    if (packet.op === Op.ERROR) {
      // Code 8 after an OACK: the client refused our options (PXE ROMs do this after a tsize probe).
      if (session.ctx.trace) this.log.debug({ client: session.ctx.clientAddress, file: session.ctx.name, code: packet.code, message: packet.message }, 'TFTP client ended the transfer');
      this.end(session, packet.code === ErrorCode.OPTION_REFUSED ? 'options-refused' : 'client-error');
      return undefined;
    }
    this.drop('unexpected-packet');
    return undefined;
  }

  /**
   * An ICMP error about a packet we sent to `address`:`port`. Port
   * unreachable means nobody listens there any more: that client's transfer
   * ends at once. Host and network unreachable can be passing (a neighbour
   * not resolved yet): the timer and the deadline decide those.
   */
  private onPeerError(session: Session, address: number, port: number, errno: number): void {
    if (errno !== ERRNO.ECONNREFUSED || address !== session.ctx.clientIp || port !== session.ctx.clientPort) return;
    if (session.transfer) this.end(session, 'client-gone');
  }

  private tick(): void {
    if (!this.sessions.size) {
      // Idle: no wakeups until the next transfer.
      clearInterval(this.ticker);
      this.ticker = undefined;
      return;
    }
    const now = performance.now();
    for (const s of this.sessions.values()) {
      const t = s.transfer;
      if (!t) continue;
      const r = t.onTick(now);
      if (r === 'resent') this.flush(s);
      if (r === 'waiting' || r === 'resent') continue;
      // Given up: a client that acknowledged something hears why (queued before the session ends; closing the socket
      // sends what it queued first). One that never did may be a forged address: it gets nothing more.
      if (t.started) s.socket?.queue(r === 'deadline' ? DEADLINE_PASSED : TIMED_OUT, s.ctx.clientIp, s.ctx.clientPort);
      this.end(s, r === 'deadline' ? 'deadline' : 'timeout');
    }
  }

  /** Ends a session: closes its socket, gives its file back, frees its slot for the next waiting request. */
  private end(session: Session, outcome: Outcome | undefined): void {
    if (session.ended) return;
    session.ended = true;
    this.sessions.delete(session.key);
    this.unclaim(session.ctx.clientIp);
    const t = session.transfer;
    if (t) {
      this.dataSent.value += t.blocksSent;
      this.retransmitted.value += t.retransmitted;
      this.bytesSent.value += t.bytesAcknowledged;
    }
    if (outcome) this.transfers.with({ outcome }).value++;
    if (outcome === 'complete') this.recordLoader(session.ctx);
    if (session.ctx.trace && outcome) this.log.debug({ client: session.ctx.clientAddress, file: session.ctx.name, outcome, packets: t?.blocksSent, retransmitted: t?.retransmitted }, 'TFTP transfer ended');
    session.transfer = undefined;
    void session.socket?.close();
    session.file?.release();
    if (this.stopped) return;
    const next = this.admission.release(performance.now());
    if (next) this.begin(next);
  }

  /** A transfer (or waiting request) of this client address is over. */
  private unclaim(clientIp: number): void {
    const n = (this.perClient.get(clientIp) ?? 1) - 1;
    if (n > 0) this.perClient.set(clientIp, n); else this.perClient.delete(clientIp);
  }

  /** Boot timeline: a node, or a pool client (by its lease), finished fetching one of its profile's loaders. */
  private recordLoader(ctx: TftpRequestContext): void {
    const timelines = this.deps.timelines;
    if (!timelines) return;
    const { model, store } = this.deps;
    const node = this.nodeOf(ctx.clientIp);
    if (node) {
      if (Object.values(model.profileOf(node).loaders).includes(ctx.name)) timelines.record(node.name, 'tftp-loader', Date.now(), ctx.name);
      return;
    }
    const lease = store.get('leases', intToIp(ctx.clientIp));
    const profile = model.profile('default');
    if (lease && profile && Object.values(profile.loaders).includes(ctx.name)) timelines.recordClient(lease.mac, 'tftp-loader', Date.now(), ctx.name);
  }

  /** The node at a client address: its reservation, or a lease the DHCP service gave it. */
  private nodeOf(ip: number): NodeRecord | undefined {
    const { model, store } = this.deps;
    const byIp = model.nodeByIp(ip);
    if (byIp) return byIp;
    const lease = store.get('leases', intToIp(ip));
    return lease?.node ? model.nodeByName(lease.node) : undefined;
  }
}
