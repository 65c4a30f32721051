/**
 * A DHCP load client for the durability test, run inside a lab namespace:
 *   ip netns exec NS node --import tsx test/helpers/dhcp-load.ts --server 198.18.0.1 --relay 198.18.0.9 --count 5000 --concurrency 64 --mac-base 5
 * It plays a relay agent (like perfdhcp): binds <relay>:67, sets giaddr, and
 * runs DISCOVER -> OFFER -> REQUEST -> ACK for `count` distinct MACs. Every ACK
 * is printed at once as "ACK <mac> <ip> <lease seconds> <server id>", so a test that kills the server
 * knows exactly which leases were acknowledged.
 */
import dgram from 'node:dgram';
import { decode, encode, type DhcpMessage } from '../../protocols/dhcp/codec.ts';
import { ipList, MessageType, Opt, readU8, u8 } from '../../protocols/dhcp/options.ts';
import { intToIp, ipToInt } from '../../src/net/ipv4.ts';
import { macFromBytes } from '../../src/net/mac.ts';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const server = args.get('server')!;
const relay = args.get('relay')!;
const count = Number(args.get('count') ?? 1000);
const concurrency = Number(args.get('concurrency') ?? 32);
const macBase = Number(args.get('mac-base') ?? 1);

function mac(i: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16BE(0x0200 | (macBase & 0xff), 0);
  b.writeUInt32BE(i, 2);
  return b;
}

function message(i: number, type: number, extra: Array<[number, Buffer]> = []): Buffer {
  const m: DhcpMessage = {
    op: 1, htype: 1, hlen: 6, hops: 1, xid: i, secs: 0, flags: 0,
    ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: ipToInt(relay), chaddr: mac(i), sname: '', file: '',
    options: new Map([[Opt.MESSAGE_TYPE, u8(type)], ...extra]),
  };
  return encode(m).bytes;
}

const socket = dgram.createSocket('udp4');
let next = 0;
let done = 0;
const pending = new Map<number, NodeJS.Timeout>();

const discovers = new Map<number, Buffer>();
const naks = new Map<number, number>();

function start(i: number): void {
  const d = message(i, MessageType.DISCOVER);
  discovers.set(i, d);
  send(i, d);
}

/** REQUESTs a client retransmits before it starts over with a DISCOVER, as real clients give up on a server. */
const REQUEST_TRIES = 4;

function send(i: number, bytes: Buffer, tries = 1): void {
  clearTimeout(pending.get(i));
  // Retransmit after a second, as real clients do; a REQUEST left unanswered ends in INIT again.
  const again = tries >= REQUEST_TRIES && bytes !== discovers.get(i) ? () => start(i) : () => send(i, bytes, tries + 1);
  pending.set(i, setTimeout(again, 1000));
  socket.send(bytes, 67, server);
}

function finish(i: number): void {
  clearTimeout(pending.get(i));
  pending.delete(i);
  discovers.delete(i);
  done++;
  if (next < count) start(next++);
  else if (done === count) socket.close();
}

socket.on('message', (buf) => {
  let m: DhcpMessage;
  try { m = decode(buf); } catch { return; }
  const type = readU8(m.options.get(Opt.MESSAGE_TYPE));
  const i = m.xid;
  if (!pending.has(i)) return;
  if (type === MessageType.OFFER) {
    send(i, message(i, MessageType.REQUEST, [[Opt.REQUESTED_IP, ipList([m.yiaddr])], [Opt.SERVER_ID, m.options.get(Opt.SERVER_ID)!]]));
  } else if (type === MessageType.ACK) {
    process.stdout.write(`ACK ${macFromBytes(m.chaddr)} ${intToIp(m.yiaddr)} ${m.options.get(Opt.LEASE_TIME)?.readUInt32BE(0) ?? 0} ${m.options.get(Opt.SERVER_ID)?.readUInt32BE(0) ?? 0}\n`);
    finish(i);
  } else if (type === MessageType.NAK) {
    process.stdout.write(`NAK ${macFromBytes(m.chaddr)}\n`);
    // A NAKed client starts over (RFC 2131 4.4.1), a few times.
    const n = (naks.get(i) ?? 0) + 1;
    naks.set(i, n);
    if (n < 3) start(i); else finish(i);
  }
});

socket.bind(67, relay, () => {
  while (next < Math.min(concurrency, count)) start(next++);
});
