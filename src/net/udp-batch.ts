/**
 * Batched UDP for services at high packet rates (DNS, DHCP, TFTP transfers): the native
 * helper native/udp_batch.c reads up to `slots` datagrams per wake-up with
 * recvmmsg(2) into one shared buffer, calls JavaScript once for the batch,
 * and sends the replies written back with one sendmmsg(2): through dgram the
 * per-datagram crossing into JavaScript is most of a hot server's CPU
 * (docs/dns.md has the measurements). Use dgram (openUdp) for anything that
 * is not hot.
 *
 * A received datagram is a view into the shared buffer, valid only during
 * the handler's call: keep a copy for anything answered later.
 */
import { openUdpFd, type UdpBinding } from './udp.ts';
import { nativeHelper, type UdpBatchNative } from './native.ts';

const batchNative = () => nativeHelper('udp_batch');

/**
 * Answers one datagram from `address` (IPv4 as an integer) and `port`: the
 * reply to send back at once, or undefined (no reply, or one sent later
 * with `sendTo`).
 */
export type DatagramHandler = (msg: Buffer, address: number, port: number) => Buffer | undefined;

/**
 * An ICMP error about a datagram this socket sent to `address`:`port`, as an
 * errno (os.constants.errno; ECONNREFUSED: port unreachable, nobody listens
 * there any more).
 */
export type PeerErrorHandler = (address: number, port: number, errno: number) => void;

export interface UdpBatchOptions extends UdpBinding {
  /** Datagrams read per system call (default 64). */
  readonly slots?: number;
  /** The largest datagram read or written through a slot (default 4096); larger replies go out on their own. */
  readonly slotSize?: number;
  /** Kernel send buffer in bytes (best effort), for sockets that many transfers share. */
  readonly sendBufferSize?: number;
  /**
   * Report ICMP errors about sent datagrams to `start`'s onPeerError
   * (IP_RECVERR). A connected socket learns that its peer is gone for free;
   * an unconnected one only this way.
   */
  readonly peerErrors?: boolean;
  /**
   * NTP: where a reply's transmit timestamp goes. The socket then records the
   * kernel's receive time of each datagram (lastReceiveTime), and a datagram
   * queued with `stamp` gets the system time written there immediately
   * before its own sendmsg(2).
   */
  readonly stampOffset?: number;
}

export class UdpBatchSocket {
  private readonly rx: Buffer;
  private readonly tx: Buffer;
  private readonly rxMeta: Uint32Array;
  private readonly txMeta: Uint32Array;
  private readonly rxStamps: Float64Array;
  /** Slot of the datagram the handler is looking at. */
  private current = 0;
  private closed = false;
  /** tx slots filled so far: sent when the batch being handled ends, or by the next flush. */
  private out = 0;
  private inBatch = false;
  private flushPending = false;

  private constructor(private readonly handle: object, parts: ReturnType<UdpBatchNative['open']>, private readonly slotSize: number, private readonly slots: number, private readonly boundPort: number) {
    this.rx = Buffer.from(parts.rx);
    this.tx = Buffer.from(parts.tx);
    this.rxMeta = new Uint32Array(parts.rxMeta);
    this.txMeta = new Uint32Array(parts.txMeta);
    this.rxStamps = new Float64Array(parts.rxStamps);
  }

  static open(options: UdpBatchOptions): UdpBatchSocket {
    const n = batchNative();
    const fd = openUdpFd(options);
    const slots = options.slots ?? 64;
    const slotSize = options.slotSize ?? 4096;
    const parts = n.open(fd, slots, slotSize, options.recvBufferSize ?? 0, options.sendBufferSize ?? 0, options.peerErrors ?? false, options.stampOffset ?? -1);
    return new UdpBatchSocket(parts.handle, parts, slotSize, slots, parts.port);
  }

  /**
   * Starts receiving; `onOversized` hears of each datagram longer than a
   * slot, dropped unread; `onPeerError` of ICMP errors (with `peerErrors`).
   */
  start(handler: DatagramHandler, onOversized: () => void = () => undefined, onPeerError?: PeerErrorHandler): void {
    const { rx, rxMeta, slotSize } = this;
    batchNative().start(this.handle, (received) => {
      this.inBatch = true;
      try {
        for (let i = 0; i < received; i++) {
          const m = i * 4;
          if (rxMeta[m + 3]) { onOversized(); continue; }
          const address = rxMeta[m + 1]!;
          const port = rxMeta[m + 2]!;
          this.current = i;
          const reply = handler(rx.subarray(i * slotSize, i * slotSize + rxMeta[m]!), address, port);
          if (reply) this.queue(reply, address, port);
        }
      } finally {
        this.inBatch = false;
      }
      // The native side sends what this batch queued, with one sendmmsg.
      const out = this.out;
      this.out = 0;
      return out;
    }, onPeerError);
  }

  /** The bound port. */
  get port(): number { return this.boundPort; }

  /**
   * Queues one datagram for the next sendmmsg: the one that ends the batch
   * being handled, or, outside a batch, one made before the event loop polls
   * again. Use it for replies sent to another address than the request's
   * source, or later than the request's batch.
   */
  queue(buf: Buffer, address: number, port: number, stamp = false): void {
    this.queueParts(buf, undefined, address, port, stamp);
  }

  /**
   * `queue` for a datagram in two parts (a header and a view of a file),
   * copied straight into the slot; a datagram larger than a slot is sent at
   * once with `sendParts`, uncopied (and unstamped).
   */
  queueParts(head: Buffer, tail: Buffer | undefined, address: number, port: number, stamp = false): void {
    if (this.closed) return;
    const length = head.length + (tail?.length ?? 0);
    if (length > this.slotSize) { this.sendParts(tail ? [head, tail] : [head], address, port); return; }
    if (this.out === this.slots) this.flush();
    const at = this.out * this.slotSize;
    head.copy(this.tx, at);
    if (tail) tail.copy(this.tx, at + head.length);
    const t = this.out * 4;
    this.txMeta[t] = length;
    this.txMeta[t + 1] = address;
    this.txMeta[t + 2] = port;
    this.txMeta[t + 3] = stamp ? 1 : 0;
    this.out++;
    if (!this.inBatch && !this.flushPending) {
      this.flushPending = true;
      setImmediate(() => { this.flushPending = false; this.flush(); });
    }
  }

  /**
   * The kernel's receive time of the datagram being handled (sockets opened
   * with stampOffset): out[0] = seconds, out[1] = nanoseconds. False when the
   * kernel gave none.
   */
  lastReceiveTime(out: Float64Array): boolean {
    const s = this.current * 2;
    const sec = this.rxStamps[s]!;
    if (sec === 0) return false;
    out[0] = sec;
    out[1] = this.rxStamps[s + 1]!;
    return true;
  }

  /** Sends every queued datagram now. */
  flush(): void {
    if (this.out === 0 || this.closed) { this.out = 0; return; }
    batchNative().sendSlots(this.handle, this.out);
    this.out = 0;
  }

  /** Sends one datagram now; returns 0 or the errno (EAGAIN when the socket's queue is full: dropped). */
  sendTo(buf: Buffer, address: number, port: number): number {
    if (this.closed) return 9; // EBADF
    return this.sendParts([buf], address, port);
  }

  /**
   * Sends `parts` (at most 256 buffers) to address:port now, as one datagram
   * without copying them; with `segmentSize`, as datagrams of that many bytes
   * (UDP GSO: the kernel cuts them; at most 64 and 65,507 bytes in all).
   * Returns 0 or the errno (EIO, EINVAL, EMSGSIZE: the device or the kernel
   * refused the segmentation).
   */
  sendParts(parts: readonly Buffer[], address: number, port: number, segmentSize = 0): number {
    if (this.closed) return 9; // EBADF
    return batchNative().sendParts(this.handle, parts, address, port, segmentSize);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.flush();
    this.closed = true;
    return new Promise((resolve) => batchNative().close(this.handle, resolve));
  }
}
