/**
 * The server side of one NTP socket: receive, run the handler chain, answer.
 * The main thread has one; each extra worker thread (ntp.workers) has its own
 * on the same port (SO_REUSEPORT), fed the synchronisation state by the main
 * thread.
 *
 * The socket is the batch socket (src/net/udp-batch.ts): recvmmsg hands a
 * whole batch of requests to JavaScript in one call, which is what lets one
 * thread answer more requests a second than chronyd (through node:dgram,
 * one crossing and one Buffer per datagram capped it at about 40-60k/s).
 * Timestamps still sit where chronyd takes them: the receive timestamp is
 * the kernel's (SO_TIMESTAMPNS, per datagram of the batch), and the
 * transmit timestamp is written by the native side immediately before each
 * reply's own sendmsg(2). The reply is encoded over the request's slot and
 * copied into a send slot, so answering allocates nothing.
 */
import { emptyPacket, encodeInto, HEADER_LENGTH, Offset, timestamp } from '../../../protocols/ntp/codec.ts';
import type { Logger } from '../../log.ts';
import { ipToInt, intToIp } from '../../net/ipv4.ts';
import { openUdp } from '../../net/udp.ts';
import { UdpBatchSocket } from '../../net/udp-batch.ts';
import type { Reading, SystemClock } from './clock.ts';
import type { DropReason, Handler, NtpContext, ReplyKind } from './context.ts';
import { rateLimit } from './handlers/rate-limit.ts';
import { acceptRequests } from './handlers/request.ts';
import { serveTime } from './handlers/serve.ts';
import { ClientRateLimiter, type RateLimitOptions } from './rate-limit.ts';
import type { SystemState } from './sync.ts';

const WARM_UP_REQUESTS = 3000;

/**
 * The server's socket on `port` (another thread's too, with reusePort): a
 * batch socket with kernel receive times and stamped sends. A request longer
 * than a slot (1 KiB: an NTP header with extension fields and a MAC fits
 * many times over) is dropped as oversized. The receive buffer is 16 MiB so
 * that bursts queue instead of overflowing (docs/ntp.md#benchmark); queueing
 * does not bias the timestamps, as the receive time is the kernel's.
 */
export function openServerSocket(address: string, port: number, reusePort: boolean): UdpBatchSocket {
  return UdpBatchSocket.open({ address, port, reusePort, recvBufferSize: 16 << 20, slotSize: 1024, stampOffset: Offset.TRANSMIT_TIME });
}

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
    this.ctx = { rx: 0, received: timestamp(), client: 0, clientPort: 0, bytes: Buffer.alloc(0), req: emptyPacket(), res: emptyPacket(), reply: undefined, drop: undefined };
  }

  /** Serves on the socket (opened with stampOffset: the transmit timestamp's), after warming up the answer path. */
  async attach(socket: UdpBatchSocket): Promise<void> {
    const { clock } = this.opts;
    await this.warmUp(socket);
    socket.start((bytes, address, port) => {
      const rx = clock.read();
      // The kernel stamped the datagram when it arrived; the event loop came later.
      if (!socket.lastReceiveTime(this.kernelTime) || !clock.kernelToNtp(this.kernelTime, rx, this.ctx.received)) clock.toNtp(rx, this.ctx.received);
      this.onRequest(socket, bytes, address, port, rx);
      return undefined; // replies are queued with their stamp flag
    }, () => this.opts.tally.dropped('oversized'));
  }

  private onRequest(socket: UdpBatchSocket, bytes: Buffer, address: number, port: number, rx: Reading): void {
    const { tally, log } = this.opts;
    tally.received();
    let ctx: NtpContext;
    try {
      ctx = this.answer(socket, bytes, address, port, rx, this.chain);
    } catch (e) {
      // A handler bug must cost one datagram, never the listener.
      tally.dropped('internal');
      log.error({ err: e, client: intToIp(address) }, 'NTP request failed');
      return;
    }
    if (ctx.reply !== undefined) {
      tally.replied(ctx.reply);
      return;
    }
    tally.dropped(ctx.drop ?? 'mode');
    if (log.isLevelEnabled('debug')) log.debug({ client: intToIp(address), port, reason: ctx.drop, bytes: bytes.length }, 'NTP datagram dropped');
  }

  /** `bytes` is the request's slot in the batch buffer: the reply is encoded over it, then copied into a send slot. */
  private answer(socket: UdpBatchSocket, bytes: Buffer, address: number, port: number, rx: Reading, chain: readonly Handler[]): NtpContext {
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
    // A kiss carries the client's own timestamps, not ours: only time replies are stamped.
    socket.queue(bytes.subarray(0, HEADER_LENGTH), address, port, ctx.reply === 'time');
    return ctx;
  }

  /**
   * Runs the answer path a few thousand times on loopback before serving.
   * V8 first interprets new code, and a cold path between the transmit
   * timestamp and the wire costs a client tens to hundreds of microseconds of
   * offset (measured). Replies go to a throwaway socket on 127.0.0.1; the rate
   * limiter and the counters are left out.
   */
  private async warmUp(socket: UdpBatchSocket): Promise<void> {
    const { clock } = this.opts;
    const sink = await openUdp({ address: '127.0.0.1', port: 0 });
    const port = sink.address().port;
    const loopback = ipToInt('127.0.0.1');
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
      this.answer(socket, Buffer.from(request), loopback, port, rx, this.warmChain);
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => { timer = setTimeout(r, 500); })]);
    clearTimeout(timer);
    await new Promise<void>((r) => sink.close(() => r()));
  }
}
