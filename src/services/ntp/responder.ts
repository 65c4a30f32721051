/**
 * The server side of one NTP socket: receive, run the handler chain, answer.
 * The main thread has one; each extra worker thread (ntp.workers) has its own
 * on the same port (SO_REUSEPORT), fed the synchronisation state by the main
 * thread.
 *
 * Timestamps sit as close to the wire as Node allows: the receive timestamp
 * is the kernel's (SIOCGSTAMPNS), read first thing in the 'message'
 * listener, and the transmit timestamp is written by the native helper
 * immediately before its sendto(2) — the two places chronyd takes them. The
 * reply is written over the request's own buffer, which Node hands to us
 * alone, so answering allocates nothing.
 */
import type dgram from 'node:dgram';
import { emptyPacket, encodeInto, HEADER_LENGTH, Offset, timestamp } from '../../../protocols/ntp/codec.ts';
import type { Logger } from '../../log.ts';
import { lastReceiveTime, openUdp, sendStamped } from '../../net/udp.ts';
import type { Reading, SystemClock } from './clock.ts';
import type { DropReason, Handler, NtpContext, ReplyKind } from './context.ts';
import { rateLimit } from './handlers/rate-limit.ts';
import { acceptRequests } from './handlers/request.ts';
import { serveTime } from './handlers/serve.ts';
import { ClientRateLimiter, type RateLimitOptions } from './rate-limit.ts';
import type { SystemState } from './sync.ts';

const WARM_UP_REQUESTS = 3000;

/** Where a responder counts what it did (metrics in the main thread, deltas in a worker). */
export interface Tally {
  received(): void;
  replied(kind: ReplyKind): void;
  dropped(reason: DropReason): void;
}

export interface ResponderOptions {
  readonly clock: SystemClock;
  /** The synchronisation state replies carry, updated in place by its owner. */
  readonly served: SystemState;
  /** Undefined: no rate limit. */
  readonly rateLimit: RateLimitOptions | undefined;
  readonly tally: Tally;
  readonly log: Logger;
}

export class Responder {
  private readonly chain: Handler[];
  private readonly warmChain: Handler[];
  private readonly ctx: NtpContext;
  private readonly kernelTime = new Float64Array(2);

  constructor(private readonly opts: ResponderOptions) {
    const limiter = opts.rateLimit ? rateLimit(new ClientRateLimiter(opts.rateLimit)) : undefined;
    const serve = serveTime(opts.served, opts.clock);
    this.chain = [acceptRequests(), ...(limiter ? [limiter] : []), serve];
    this.warmChain = [acceptRequests(), serve];
    this.ctx = { rx: 0, received: timestamp(), client: '', clientPort: 0, bytes: Buffer.alloc(0), req: emptyPacket(), res: emptyPacket(), reply: undefined, drop: undefined };
  }

  /** Serves on the socket (opened with rxTimestamps), after warming up the answer path. */
  async attach(socket: dgram.Socket): Promise<void> {
    const { clock } = this.opts;
    socket.on('message', (bytes, rinfo) => {
      const rx = clock.read();
      // The kernel stamped the datagram when it arrived; the event loop came later.
      if (!lastReceiveTime(socket, this.kernelTime) || !clock.kernelToNtp(this.kernelTime, rx, this.ctx.received)) clock.toNtp(rx, this.ctx.received);
      this.onRequest(socket, bytes, rinfo.address, rinfo.port, rx);
    });
    socket.on('error', (e) => this.opts.log.warn({ err: e }, 'NTP socket error'));
    await this.warmUp(socket);
  }

  private onRequest(socket: dgram.Socket, bytes: Buffer, address: string, port: number, rx: Reading): void {
    const { tally, log } = this.opts;
    tally.received();
    let ctx: NtpContext;
    try {
      ctx = this.answer(socket, bytes, address, port, rx, this.chain);
    } catch (e) {
      // A handler bug must cost one datagram, never the listener.
      tally.dropped('internal');
      log.error({ err: e, client: address }, 'NTP request failed');
      return;
    }
    if (ctx.reply !== undefined) {
      tally.replied(ctx.reply);
      return;
    }
    tally.dropped(ctx.drop ?? 'mode');
    if (log.isLevelEnabled('debug')) log.debug({ client: address, port, reason: ctx.drop, bytes: bytes.length }, 'NTP datagram dropped');
  }

  private answer(socket: dgram.Socket, bytes: Buffer, address: string, port: number, rx: Reading, chain: readonly Handler[]): NtpContext {
    const ctx = this.ctx;
    ctx.rx = rx;
    ctx.client = address;
    ctx.clientPort = port;
    ctx.bytes = bytes;
    ctx.reply = undefined;
    ctx.drop = undefined;
    for (const h of chain) if (!h(ctx)) break;
    if (ctx.reply === undefined) return ctx;
    encodeInto(ctx.res, bytes, 0);
    if (ctx.reply === 'kiss-rate') {
      socket.send(bytes, 0, HEADER_LENGTH, port, address);
    } else if (sendStamped(socket, bytes, HEADER_LENGTH, address, port, Offset.TRANSMIT_TIME) < 0) {
      // The socket's send buffer is full (a flood): dropped, not queued without bound.
      ctx.reply = undefined;
      ctx.drop = 'send-failed';
    }
    return ctx;
  }

  /**
   * Runs the answer path a few thousand times on loopback before serving.
   * V8 first interprets new code, and a cold path between the transmit
   * timestamp and the wire costs a client tens to hundreds of microseconds of
   * offset (measured). Replies go to a throwaway socket on 127.0.0.1; the rate
   * limiter and the counters are left out.
   */
  private async warmUp(socket: dgram.Socket): Promise<void> {
    const { clock } = this.opts;
    const sink = await openUdp({ address: '127.0.0.1', port: 0 });
    const port = sink.address().port;
    let received = 0;
    const all = new Promise<void>((resolve) => {
      sink.on('message', () => { if (++received === WARM_UP_REQUESTS) resolve(); });
    });
    const request = Buffer.alloc(HEADER_LENGTH);
    request[0] = 0x23; // NTPv4, client
    for (let i = 0; i < WARM_UP_REQUESTS; i++) {
      const rx = clock.read();
      clock.toNtp(rx, this.ctx.received);
      request.writeUInt32BE(i, Offset.TRANSMIT_TIME + 4);
      this.answer(socket, Buffer.from(request), '127.0.0.1', port, rx, this.warmChain);
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => { timer = setTimeout(r, 500); })]);
    clearTimeout(timer);
    await new Promise<void>((r) => sink.close(() => r()));
  }
}
