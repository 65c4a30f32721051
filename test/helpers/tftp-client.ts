/**
 * A raw TFTP client for tests: sends exactly the datagrams a test writes
 * (malformed ones included) and reads the replies with a bounded wait. Real
 * clients (tftp-hpa, atftp, curl) are used wherever they can express the
 * case; this covers what they cannot (traversal tricks, junk, a client that
 * vanishes or falls silent).
 */
import dgram from 'node:dgram';
import { decode, encodeAck, encodeRequest, Op, type TftpPacket } from '../../protocols/tftp/codec.ts';

export interface Received { readonly packet: TftpPacket; readonly port: number }

export class RawTftpClient {
  private readonly queue: Received[] = [];
  private waiter: (() => void) | undefined;
  private closed = false;
  private constructor(readonly socket: dgram.Socket, readonly server: string, readonly serverPort: number) {
    socket.on('message', (buf, rinfo) => {
      try { this.queue.push({ packet: decode(buf), port: rinfo.port }); } catch { /* not TFTP: ignore */ }
      this.waiter?.();
    });
  }

  static async open(server: string, serverPort: number, bind = '127.0.0.1'): Promise<RawTftpClient> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, bind, r));
    return new RawTftpClient(s, server, serverPort);
  }

  get port(): number { return this.socket.address().port; }

  send(bytes: Buffer, port = this.serverPort): void {
    this.socket.send(bytes, port, this.server);
  }

  request(filename: string, options: Record<string, string> = {}, mode = 'octet'): void {
    this.send(encodeRequest({ op: Op.RRQ, filename, mode, options: new Map(Object.entries(options)) }));
  }

  /** The next packet, or an error after `timeoutMs`. */
  async recv(timeoutMs = 5000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    while (!this.queue.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no TFTP packet within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(timer); resolve(); };
      });
      this.waiter = undefined;
    }
    return this.queue.shift()!;
  }

  /** Sends the request until something answers (as real clients do: a request can be lost); returns the first reply. */
  async ask(filename: string, options: Record<string, string> = {}, tries = 5): Promise<Received> {
    for (let i = 1; ; i++) {
      this.request(filename, options);
      try { return await this.recv(1000); } catch (e) { if (i >= tries) throw e; }
    }
  }

  /** Lockstep download of `filename`; returns the bytes and the OACK's options, if any. */
  async fetch(filename: string, options: Record<string, string> = {}): Promise<{ data: Buffer; oack: Map<string, string> | undefined }> {
    this.queue.unshift(await this.ask(filename, options));
    const chunks: Buffer[] = [];
    let oack: Map<string, string> | undefined;
    let expected = 1;
    let blockSize = 512;
    for (;;) {
      const { packet, port } = await this.recv();
      if (packet.op === Op.ERROR) throw new Error(`TFTP error ${packet.code}: ${packet.message}`);
      if (packet.op === Op.OACK) {
        oack = new Map(packet.options);
        blockSize = Number(oack.get('blksize') ?? 512);
        this.send(encodeAck(0), port);
        continue;
      }
      if (packet.op !== Op.DATA) throw new Error(`unexpected opcode ${packet.op}`);
      if (packet.block === (expected & 0xffff)) {
        chunks.push(Buffer.from(packet.data));
        expected++;
      }
      this.send(encodeAck(packet.block), port);
      if (packet.data.length < blockSize && packet.block === ((expected - 1) & 0xffff)) return { data: Buffer.concat(chunks), oack };
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close();
  }
}
