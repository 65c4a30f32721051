/**
 * The sockets at the edge: the batched UDP socket feeding the responder, and
 * the TCP listener (RFC 7766: two-byte length prefix, several queries per
 * connection, answers as they are ready, an idle timeout).
 */
import net from 'node:net';
import type { Logger } from '../../log.ts';
import { ipToInt, isIpv4 } from '../../net/ipv4.ts';
import type { UdpBatchSocket } from '../../net/udp-batch.ts';
import type { Transport } from './context.ts';
import type { DnsCounters } from './counters.ts';

/** Answers one message; see DnsResponder.respond. */
export type Respond = (raw: Buffer, client: number, transport: Transport) => Buffer | Promise<Buffer> | undefined;

/** Connections served at once; more wait in the kernel's backlog. */
const MAX_TCP_CONNECTIONS = 512;

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

export class TcpListener {
  private readonly server: net.Server;
  private readonly connections = new Set<net.Socket>();

  constructor(private readonly respond: Respond, private readonly idleMs: number, private readonly log: Logger) {
    this.server = net.createServer((conn) => this.serve(conn));
    this.server.maxConnections = MAX_TCP_CONNECTIONS;
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
    this.connections.add(conn);
    conn.setNoDelay(true);
    conn.setTimeout(this.idleMs, () => conn.destroy());
    conn.on('close', () => this.connections.delete(conn));
    conn.on('error', () => undefined); // a reset by the client ends the connection; nothing to report
    const client = peerAddress(conn);
    let pending: Buffer = Buffer.alloc(0);
    conn.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length >= 2) {
        const len = pending.readUInt16BE(0);
        if (pending.length < 2 + len) break;
        const msg = pending.subarray(2, 2 + len);
        pending = pending.subarray(2 + len);
        this.answer(conn, msg, client);
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
    if (out === undefined) { conn.destroy(); return; } // not a query: the stream cannot be trusted
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
