/**
 * Asking the upstream resolvers. A query leaves with a fresh random id from
 * one of a few sockets on random ports, and a response is taken only from
 * the upstream it was sent to, on that socket, with that id and our question
 * (the usual defences against spoofed answers). Upstreams are tried in
 * order; one that is silent for the timeout, or answers SERVFAIL, REFUSED or
 * NOTIMP, passes the question to the next. Queries that came over TCP are
 * forwarded over TCP: their answers may be larger than any UDP response.
 */
import { randomFillSync } from 'node:crypto';
import type dgram from 'node:dgram';
import net from 'node:net';
import { HEADER_LENGTH, Rcode } from '../../../protocols/dns/constants.ts';
import { swapId } from '../../../protocols/dns/response.ts';
import type { DnsUpstream } from '../../config/sections/dns.ts';
import { openUdp } from '../../net/udp.ts';
import type { Transport } from './context.ts';
import type { DnsCounters } from './counters.ts';

/** Sockets queries leave from; the source port is one more thing a spoofer must guess. */
const SOCKETS = 4;
/** Rcodes that say "ask someone else" rather than "this is the answer". */
const TRY_NEXT: ReadonlySet<number> = new Set([Rcode.SERVFAIL, Rcode.NOTIMP, Rcode.REFUSED]);

interface Pending {
  readonly socket: dgram.Socket;
  readonly upstream: DnsUpstream;
  readonly query: Buffer;
  readonly questionEnd: number;
  readonly resolve: (response: Buffer | undefined) => void;
  readonly timer: NodeJS.Timeout;
}

export class Forwarder {
  private readonly sockets: dgram.Socket[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly random = Buffer.alloc(4096);
  private randomAt = this.random.length;

  constructor(
    private readonly upstreams: readonly DnsUpstream[],
    private readonly timeoutMs: number,
    private readonly counters: DnsCounters,
  ) {}

  get enabled(): boolean { return this.upstreams.length > 0; }

  async start(): Promise<void> {
    if (!this.enabled) return;
    for (let i = 0; i < SOCKETS; i++) {
      const socket = await openUdp({ address: '0.0.0.0', port: 0 });
      socket.on('message', (msg, rinfo) => this.onResponse(socket, msg, rinfo));
      socket.on('error', () => undefined); // ICMP unreachable and the like: the timeout handles it
      this.sockets.push(socket);
    }
  }

  async stop(): Promise<void> {
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.resolve(undefined); }
    this.pending.clear();
    await Promise.all(this.sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.sockets.length = 0;
  }

  /**
   * The upstreams' answer to `query` (a complete query message; its id is
   * replaced), made out to the original id; undefined when none answered.
   * The last upstream's SERVFAIL or REFUSED is returned as it came.
   */
  async resolve(query: Buffer, questionEnd: number, transport: Transport): Promise<Buffer | undefined> {
    const out = Buffer.from(query);
    const clientId = (query[0]! << 8) | query[1]!;
    let last: Buffer | undefined;
    for (const upstream of this.upstreams) {
      const response = transport === 'tcp' || this.sockets.length === 0
        ? await this.overTcp(upstream, out, questionEnd)
        : await this.overUdp(upstream, out, questionEnd);
      if (!response) continue;
      last = response;
      if (!TRY_NEXT.has(response[3]! & 0xf)) break;
    }
    if (last) swapId(last, clientId);
    return last;
  }

  private nextId(): number {
    for (;;) {
      if (this.randomAt + 2 > this.random.length) { randomFillSync(this.random); this.randomAt = 0; }
      const id = this.random.readUInt16BE(this.randomAt);
      this.randomAt += 2;
      if (!this.pending.has(id)) return id;
    }
  }

  private overUdp(upstream: DnsUpstream, query: Buffer, questionEnd: number): Promise<Buffer | undefined> {
    const id = this.nextId();
    swapId(query, id);
    const socket = this.sockets[id % this.sockets.length]!;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.counters.upstreamTimeouts.value++;
        resolve(undefined);
      }, this.timeoutMs);
      this.pending.set(id, { socket, upstream, query, questionEnd, resolve, timer });
      socket.send(query, upstream.port, upstream.address, (err) => {
        if (err && this.pending.get(id)?.timer === timer) { clearTimeout(timer); this.pending.delete(id); resolve(undefined); }
      });
    });
  }

  private onResponse(socket: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < HEADER_LENGTH) { this.counters.dropped['upstream-malformed'].value++; return; }
    const p = this.pending.get((msg[0]! << 8) | msg[1]!);
    if (!p || p.socket !== socket || rinfo.address !== p.upstream.address || rinfo.port !== p.upstream.port || !sameQuestion(msg, p.query, p.questionEnd)) {
      this.counters.dropped['upstream-mismatch'].value++;
      return;
    }
    clearTimeout(p.timer);
    this.pending.delete((msg[0]! << 8) | msg[1]!);
    p.resolve(msg);
  }

  /** One query over a fresh TCP connection (RFC 7766: two-byte length, then the message). */
  private overTcp(upstream: DnsUpstream, query: Buffer, questionEnd: number): Promise<Buffer | undefined> {
    const id = this.nextId();
    swapId(query, id);
    return new Promise((resolve) => {
      const conn = net.connect({ host: upstream.address, port: upstream.port });
      let got = Buffer.alloc(0);
      const done = (response: Buffer | undefined) => { clearTimeout(timer); conn.destroy(); resolve(response); };
      const timer = setTimeout(() => { this.counters.upstreamTimeouts.value++; done(undefined); }, this.timeoutMs);
      conn.on('connect', () => {
        const len = Buffer.allocUnsafe(2);
        len.writeUInt16BE(query.length);
        conn.end(Buffer.concat([len, query]));
      });
      conn.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.length < 2 || got.length < 2 + got.readUInt16BE(0)) return;
        const msg = got.subarray(2, 2 + got.readUInt16BE(0));
        if (msg.length < HEADER_LENGTH || msg.readUInt16BE(0) !== id || !sameQuestion(msg, query, questionEnd)) {
          this.counters.dropped['upstream-mismatch'].value++;
          done(undefined);
          return;
        }
        done(Buffer.from(msg));
      });
      conn.on('error', () => done(undefined));
      conn.on('close', () => done(undefined));
    });
  }
}

/** Whether a response carries our question: the same bytes from offset 12 on (resolvers echo it verbatim). */
function sameQuestion(response: Buffer, query: Buffer, questionEnd: number): boolean {
  return response.length >= questionEnd && response[5] === 1 && response.compare(query, HEADER_LENGTH, questionEnd, HEADER_LENGTH, questionEnd) === 0;
}
