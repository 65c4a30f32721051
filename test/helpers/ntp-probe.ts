/**
 * Hostile and broken NTP traffic for the abuse test, run inside a lab
 * namespace: `node --import tsx test/helpers/ntp-probe.ts SERVER`. Prints one
 * JSON line with what came back.
 *
 * No real tool sends these (ntpq and ntpdc are not packaged beside chrony),
 * so the datagrams are built here: ntpq's READVAR (mode 6), ntpdc's
 * MON_GETLIST_1 (mode 7, the monlist amplification request), truncated
 * requests, 2000 seeded-random datagrams, then a flood of valid requests.
 */
import dgram from 'node:dgram';

const server = process.argv[2]!;
const PORT = 123;
const socket = dgram.createSocket('udp4');
const replies: Buffer[] = [];
socket.on('message', (b) => replies.push(b));
await new Promise<void>((r) => socket.bind(0, r));

const send = (b: Buffer) => new Promise<void>((r) => socket.send(b, PORT, server, () => r()));
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Collects what arrives while `fn` runs and for `ms` after. */
async function phase(fn: () => Promise<void>, ms = 500): Promise<Buffer[]> {
  replies.length = 0;
  await fn();
  await settle(ms);
  return replies.splice(0);
}

function request(tag: number): Buffer {
  const b = Buffer.alloc(48);
  b[0] = 0x23; // NTPv4 client
  b.writeUInt32BE(tag, 44);
  return b;
}

// mulberry32: a seeded generator, so a failure replays.
let seed = 0x5eed1234;
function random(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let z = seed;
  z = Math.imul(z ^ (z >>> 15), z | 1);
  z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
  return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
}

const controlReplies = await phase(async () => {
  await send(Buffer.from([0x16, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0])); // ntpq READVAR
  await send(Buffer.concat([Buffer.from([0x16, 0x01, 0x00, 0x02]), Buffer.alloc(44)])); // mode 6, 48 bytes
});
const privateReplies = await phase(async () => {
  await send(Buffer.concat([Buffer.from([0x17, 0x00, 0x03, 0x2a]), Buffer.alloc(44)])); // monlist
  await send(Buffer.concat([Buffer.from([0x27, 0x00, 0x03, 0x2a]), Buffer.alloc(188)])); // monlist v4, padded
});
const truncatedReplies = await phase(async () => {
  await send(request(1).subarray(0, 47));
  await send(request(2).subarray(0, 20));
  await send(Buffer.alloc(0));
  await send(Buffer.concat([request(3), Buffer.alloc(7)])); // a stray 7-byte trailer
});
const RANDOM = 2000;
const randomReplies = await phase(async () => {
  for (let i = 0; i < RANDOM; i++) {
    const b = Buffer.alloc(Math.floor(random() * 200));
    for (let k = 0; k < b.length; k++) b[k] = Math.floor(random() * 256);
    // A random datagram may by chance be a well-formed client request; make it mode 5 instead.
    if (b.length >= 48 && (b[0]! & 7) === 3 && ((b[0]! >> 3) & 7) >= 1 && ((b[0]! >> 3) & 7) <= 4) b[0] = (b[0]! & 0xf8) | 5;
    await send(b);
  }
});
// 2 s: the server logs each of the 2,000 drops above at debug level first, which a crowded machine takes a while for.
const aliveReplies = await phase(async () => { await send(request(7)); }, 2000);
const FLOOD = 200;
const floodReplies = await phase(async () => {
  for (let i = 0; i < FLOOD; i++) await send(request(100 + i));
}, 1000);
const kisses = floodReplies.filter((b) => b.length >= 48 && b[1] === 0 && b.toString('latin1', 12, 16) === 'RATE');
const kissEchoes = kisses.every((b) => b.equals(Buffer.concat([b.subarray(0, 24), b.subarray(40, 48), b.subarray(40, 48), b.subarray(40, 48)])));

process.stdout.write(JSON.stringify({
  control: controlReplies.length,
  private: privateReplies.length,
  truncated: truncatedReplies.length,
  random: randomReplies.length,
  randomSent: RANDOM,
  alive: aliveReplies.length,
  aliveStratum: aliveReplies[0]?.[1],
  flood: FLOOD,
  floodReplies: floodReplies.length,
  floodTime: floodReplies.length - kisses.length,
  floodKisses: kisses.length,
  kissEchoes,
}) + '\n');
socket.close();
