/**
 * File bodies onto TCP sockets with sendfile(2), on a thread of their own
 * (native/sendfile_pump.c says why: through Node streams the event loop
 * copies every byte of every initrd; docs/http.md#benchmark). A socket
 * handed over stays Node's: the caller writes the response head through
 * Node first, and nothing else may write to the socket until the transfer
 * ends; `send` waits for the head to reach the kernel before the helper
 * starts.
 */
import type { Socket } from 'node:net';
import os from 'node:os';
import { nativeHelper } from './native.ts';

const pumpNative = () => nativeHelper('sendfile_pump');

/** How a transfer ended: every byte sent, or why not, with the bytes that did go. */
export type TransferEnd = { readonly ok: true; readonly sent: number } | { readonly ok: false; readonly sent: number; readonly reason: string };

const ERRNO_NAMES = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));
const REASONS: Record<string, string> = {
  ETIMEDOUT: 'the client took nothing for the stall timeout',
  ECANCELED: 'cancelled (the connection closed)',
  EIO: 'the file ended before the range did (it shrank after stat)',
  ECONNRESET: 'the client reset the connection',
  EPIPE: 'the client closed the connection',
};

/** The socket's descriptor, when it is a plain TCP socket (not TLS, which sendfile cannot send through). */
export function plainSocketFd(socket: Socket): number | undefined {
  if ((socket as Socket & { encrypted?: boolean }).encrypted) return undefined;
  const fd = (socket as Socket & { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

export class SendfilePump {
  private readonly handle: object;
  private readonly pending = new Map<number, (end: TransferEnd) => void>();
  private nextId = 1;
  private closed = false;

  /** @param stallMs a transfer whose client takes no byte for this long ends with a timeout */
  constructor(stallMs: number) {
    this.handle = pumpNative().create((id, errno, sent) => this.done(id, errno, sent), stallMs);
  }

  get activeTransfers(): number { return this.pending.size; }

  /**
   * Sends `length` bytes of the open file `fileFd` from `offset` to the
   * socket, after whatever Node has already queued on it (the response
   * head). The socket must be plain TCP (plainSocketFd; TLS goes through
   * Node). The caller keeps the file open until the promise settles; the
   * promise never rejects, it reports how the transfer ended.
   */
  async send(socket: Socket, fileFd: number, offset: number, length: number): Promise<TransferEnd> {
    // An empty write completes after every earlier one, so the head is in the kernel before the body.
    await new Promise<void>((resolve) => socket.write(Buffer.alloc(0), () => resolve()));
    if (this.closed || socket.destroyed) return { ok: false, sent: 0, reason: 'the connection closed before the body' };
    const socketFd = plainSocketFd(socket);
    if (socketFd === undefined) return { ok: false, sent: 0, reason: 'not a plain TCP socket (TLS bodies go through Node)' };
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const ended = new Promise<TransferEnd>((resolve) => this.pending.set(id, resolve));
    if (this.pending.size === 1) pumpNative().keepAlive(this.handle, true);
    const err = pumpNative().send(this.handle, id, socketFd, fileFd, offset, length);
    if (err !== 0) this.done(id, err, 0);
    const onClose = () => { if (this.pending.has(id)) pumpNative().cancel(this.handle, id); };
    socket.once('close', onClose);
    const end = await ended;
    socket.off('close', onClose);
    return end;
  }

  /** Ends every transfer (each reports a cancel) and the thread. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    pumpNative().close(this.handle);
  }

  private done(id: number, errno: number, sent: number): void {
    const resolve = this.pending.get(id);
    if (!resolve) return;
    this.pending.delete(id);
    if (this.pending.size === 0 && !this.closed) pumpNative().keepAlive(this.handle, false); // once closed, the thread has let go of it
    if (errno === 0) { resolve({ ok: true, sent }); return; }
    const name = ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
    resolve({ ok: false, sent, reason: REASONS[name] ?? name });
  }
}
