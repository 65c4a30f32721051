/**
 * UDP sockets. Plain dgram where it suffices; the native helper (native/
 * udp_socket.c) where a socket must be tied to one interface, which Node's
 * dgram cannot do: a DHCP server bound to 0.0.0.0:67 would otherwise hear and
 * answer broadcasts on every interface of the host.
 */
import dgram from 'node:dgram';
import { nativeHelper } from './native.ts';

const nativeSocket = () => nativeHelper('udp_socket');

export interface UdpBinding {
  readonly address: string;
  readonly port: number;
  /** Receive and send only on this interface (SO_BINDTODEVICE). */
  readonly device?: string;
  readonly broadcast?: boolean;
  /** Several sockets on one port (one per device, or one per worker). */
  readonly reuseAddr?: boolean;
  readonly reusePort?: boolean;
  /** Kernel receive buffer in bytes, to ride out bursts. */
  readonly recvBufferSize?: number;
  /** Kernel receive timestamps, read with lastReceiveTime(); enables sendStamped() (NTP). */
  readonly rxTimestamps?: boolean;
}

/** Sockets opened with rxTimestamps, and their descriptors. */
const timestamped = new WeakMap<dgram.Socket, number>();

export async function openUdp(b: UdpBinding): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: b.reuseAddr ?? false });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    const done = () => { socket.off('error', reject); resolve(); };
    if (b.device || b.reusePort || b.rxTimestamps) {
      let fd: number;
      try {
        fd = nativeSocket().openUdp4({ address: b.address, port: b.port, device: b.device, broadcast: b.broadcast, reuseAddr: b.reuseAddr, reusePort: b.reusePort, rxTimestamps: b.rxTimestamps });
        if (b.rxTimestamps) timestamped.set(socket, fd);
      } catch (e) {
        reject(new Error(`cannot bind UDP ${b.address}:${b.port}${b.device ? ` on ${b.device}` : ''}: ${(e as Error).message}`));
        return;
      }
      socket.bind({ fd }, done);
    } else {
      socket.bind({ address: b.address, port: b.port, exclusive: true }, done);
    }
  });
  if (b.broadcast) socket.setBroadcast(true);
  if (b.recvBufferSize) {
    try { socket.setRecvBufferSize(b.recvBufferSize); } catch { /* capped by net.core.rmem_max; best effort */ }
  }
  return socket;
}

/**
 * A bound UDP socket as a bare file descriptor, from the native helper, for
 * socket users other than dgram (src/net/udp-batch.ts).
 */
export function openUdpFd(b: UdpBinding): number {
  try {
    return nativeSocket().openUdp4({ address: b.address, port: b.port, device: b.device, broadcast: b.broadcast, reuseAddr: b.reuseAddr, reusePort: b.reusePort });
  } catch (e) {
    throw new Error(`cannot bind UDP ${b.address}:${b.port}${b.device ? ` on ${b.device}` : ''}: ${(e as Error).message}`);
  }
}

/**
 * The kernel's receive time of the datagram `socket` delivered last, as Unix
 * seconds and nanoseconds in out[0] and out[1]. Call it from the 'message'
 * listener: libuv reads one datagram and delivers it before reading the next,
 * so "last" is the one being handled. False when the socket was not opened
 * with rxTimestamps or the kernel has no stamp.
 */
export function lastReceiveTime(socket: dgram.Socket, out: Float64Array): boolean {
  const fd = timestamped.get(socket);
  return fd !== undefined && nativeSocket().rxTimestamp(fd, out);
}

/**
 * Sends the first `length` bytes to address:port straight from the socket's
 * descriptor, after writing the system time (CLOCK_REALTIME, as a 64-bit NTP
 * timestamp) at `stampOffset` immediately before the sendto(2): as late as a
 * transmit timestamp can be taken, as chronyd takes it. The lowest `keepBits`
 * bits of the fraction already there are kept (a client's random noise).
 * Returns the bytes sent, or a negative errno (-11 EAGAIN: the send buffer is
 * full and nothing was queued). Only for sockets opened with rxTimestamps.
 */
export function sendStamped(socket: dgram.Socket, bytes: Buffer, length: number, address: string, port: number, stampOffset: number, keepBits = 0): number {
  const fd = timestamped.get(socket);
  if (fd === undefined) throw new Error('sendStamped needs a socket opened with rxTimestamps');
  return nativeSocket().sendStamped(fd, bytes, length, address, port, stampOffset, keepBits);
}
