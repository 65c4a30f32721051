/**
 * The sockets at the edge: the batched UDP socket feeding the responder, and
 * the TCP listener (RFC 7766: two-byte length prefix, several queries per
 * connection, answers as they are ready, an idle timeout). TCP slots are
 * bounded three ways, so a client trickling bytes cannot hold them all:
 * connections at once, connections per client address, and the time a
 * message may take to arrive from its first byte (the idle timer alone is
 * reset by every byte).
 */
import net from 'node:net';
import type { Logger } from '../../log.ts';
import { ipToInt, isIpv4 } from '../../net/ipv4.ts';
import type { UdpBatchSocket } from '../../net/udp-batch.ts';
import type { Transport } from './context.ts';
import type { DnsCounters } from './counters.ts';

/** Answers one message; see DnsResponder.respond. */
export type Respond = (raw: Buffer, client: number, transport: Transport) => Buffer | Promise<Buffer> | undefined;

export function serveUdp(socket: UdpBatchSocket, respond: Respond, counters: DnsCounters, log: Logger): void {
  socket.start((msg, address, port) => {
    let out: ReturnType<Respond>;
    try {
      out = respond(msg, address, 'udp');
    } catch (e) {
      log.error({ err: e }, 'DNS query failed');
      return undefined;
    }
    if (out === undefined || Buffer.isBuffer(out)) return out;
    out.then((b) => { socket.sendTo(b, address, port); }, (e: Error) => log.error({ err: e }, 'DNS query failed'));
    return undefined;
  }, () => { counters.dropped.oversized.value++; });
}

/** A TCP peer's IPv4 address as an integer (0 when it is not IPv4). */
function peerAddress(conn: net.Socket): number {
  const a = conn.remoteAddress ?? '';
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a;
  return isIpv4(v4) ? ipToInt(v4) : 0;
}

export interface TcpLimits {
  /** A connection with no query for this long is closed. */
  readonly idleMs: number;
  /** A message must arrive whole within this long of its first byte. */
  readonly messageMs: number;
  /** Connections at once; more are closed as they arrive. */
  readonly connections: number;
  /** Connections one client address may hold at once. */
  readonly perClient: number;
}

/** Why the listener closed a connection (bootherd_dns_tcp_closed_total{reason}). */
export type TcpCloseReason = 'idle' | 'message-timeout' | 'client-limit' | 'full' | 'not-a-query';

export class TcpListener {
  private readonly server: net.Server;
  private readonly connections = new Set<net.Socket>();
  /** Open connections per client address. */
  private readonly perClient = new Map<number, number>();

  constructor(
    private readonly respond: Respond,
    private readonly limits: TcpLimits,
    private readonly closed: (reason: TcpCloseReason) => void,
    private readonly log: Logger,
  ) {
    this.server = net.createServer((conn) => this.serve(conn));
    this.server.maxConnections = limits.connections;
    this.server.on('drop', () => this.closed('full'));
  }

  listen(address: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: address, port, exclusive: true }, () => { this.server.off('error', reject); resolve(); });
    });
  }

  close(): Promise<void> {
    for (const c of this.connections) c.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private serve(conn: net.Socket): void {
    conn.on('error', () => undefined); // a reset by the client ends the connection; nothing to report
    const client = peerAddress(conn);
    const held = this.perClient.get(client) ?? 0;
    if (held >= this.limits.perClient) { this.closed('client-limit'); conn.destroy(); return; }
    this.perClient.set(client, held + 1);
    this.connections.add(conn);
    conn.setNoDelay(true);
    conn.setTimeout(this.limits.idleMs, () => { this.closed('idle'); conn.destroy(); });
    // Armed by a message's first byte, disarmed when no partial message is left.
    let messageTimer: NodeJS.Timeout | undefined;
    conn.on('close', () => {
      clearTimeout(messageTimer);
      this.connections.delete(conn);
      const n = (this.perClient.get(client) ?? 1) - 1;
      if (n > 0) this.perClient.set(client, n); else this.perClient.delete(client);
    });
    let pending: Buffer = Buffer.alloc(0);
    conn.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let answered = false;
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        answered = true;
        this.answer(conn, msg, client);
      }
      if (!pending.length) { clearTimeout(messageTimer); messageTimer = undefined; return; }
      // A new partial message (none before, or the one before completed): its clock starts now.
      if (answered || !messageTimer) {
        clearTimeout(messageTimer);
        messageTimer = setTimeout(() => { this.closed('message-timeout'); conn.destroy(); }, this.limits.messageMs);
      }
    });
  }

  private answer(conn: net.Socket, msg: Buffer, client: number): void {
    let out: ReturnType<Respond>;
    try {
      out = this.respond(msg, client, 'tcp');
    } catch (e) {
      this.log.error({ err: e, client }, 'DNS query failed');
      return;
    }
    if (out === undefined) { this.closed('not-a-query'); conn.destroy(); return; } // the stream cannot be trusted
    const write = (b: Buffer) => {
      if (conn.destroyed) return;
      const framed = Buffer.allocUnsafe(2 + b.length);
      framed.writeUInt16BE(b.length, 0);
      b.copy(framed, 2);
      conn.write(framed);
    };
    if (Buffer.isBuffer(out)) write(out);
    else out.then(write, (e: Error) => this.log.error({ err: e, client }, 'DNS query failed'));
  }
}
