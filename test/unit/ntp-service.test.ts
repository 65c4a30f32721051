/**
 * The NTP service on loopback, fed crafted and recorded datagrams: the reply's
 * fields, the drops and their counters, and the worker threads' share of the
 * counts. (Real clients are in test/lab.)
 */
import t from 'tap';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode, Mode, referenceIdText, timestampDiff, timestampsEqual } from '../../protocols/ntp/codec.ts';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { NtpService } from '../../src/services/ntp/service.ts';

const VECTORS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../vectors/ntp');
const vector = (name: string) => Buffer.from(readFileSync(path.join(VECTORS, name), 'utf8').split('\n').filter((l) => !l.startsWith('#')).join('').trim(), 'hex');

async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface Teardownable { teardown(fn: () => unknown): void }

async function startService(t: Teardownable, ntp: string): Promise<{ service: NtpService; metrics: Metrics; port: number }> {
  const port = await freePort();
  const config = parseConfig(`
head: { name: head, address: 127.0.0.1 }
state: ${mkdtempSync(path.join(os.tmpdir(), 'bootherd-ntp-unit-'))}
dhcp: { enabled: false }
subnets:
  - network: 127.0.0.0/8
ntp: { address: 127.0.0.1, port: ${port}, ${ntp} }
`, '<test>');
  const metrics = new Metrics();
  const service = new NtpService({ config, log: silentLogger, metrics });
  await service.start();
  t.teardown(() => service.stop());
  return { service, metrics, port };
}

/** Sends each datagram from its own socket and collects replies for `ms`. */
async function exchange(port: number, datagrams: Buffer[], ms = 300): Promise<Array<Buffer | undefined>> {
  const sockets = await Promise.all(datagrams.map(async () => {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return s;
  }));
  const replies: Array<Buffer | undefined> = datagrams.map(() => undefined);
  sockets.forEach((s, i) => s.on('message', (b) => { replies[i] = b; }));
  for (const [i, d] of datagrams.entries()) sockets[i]!.send(d, port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, ms));
  for (const s of sockets) s.close();
  return replies;
}

t.test('recorded client requests get RFC 5905 server replies', async (t) => {
  const { service, port } = await startService(t, 'localStratum: 7, rateLimit: { enabled: false }');
  const requests = ['chronyd-request.hex', 'ntpdig-request.hex', 'chronyd-v3-request.hex'].map(vector);
  const replies = await exchange(port, requests);
  for (const [i, bytes] of replies.entries()) {
    const req = decode(requests[i]!);
    t.ok(bytes, `reply ${i}`);
    const r = decode(bytes!);
    t.equal(r.mode, Mode.SERVER);
    t.equal(r.version, req.version, 'version echoed');
    t.equal(r.poll, req.poll, 'poll echoed');
    t.equal(r.stratum, 7);
    t.equal(r.leap, 0);
    t.equal(r.precision, service.clock.precision);
    t.equal(referenceIdText(r.referenceId, r.stratum), '127.127.1.1');
    t.ok(timestampsEqual(r.originTime, req.transmitTime), 'origin = the request\'s transmit, bit for bit');
    const held = timestampDiff(r.transmitTime, r.receiveTime);
    t.ok(held >= 0 && held < 1, `transmit after receive (${held} s)`);
    t.equal(bytes!.length, 48);
  }
  t.equal(service.status().mode, 'local');
});

t.test('everything else is dropped and counted by reason', async (t) => {
  const { metrics, port } = await startService(t, 'localStratum: 7, rateLimit: { enabled: false }');
  const good = vector('chronyd-request.hex');
  const with0 = (b0: number) => { const b = Buffer.from(good); b[0] = b0; return b; };
  const cases: Array<[string, Buffer]> = [
    ['control', Buffer.from([0x16, 0x02, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])],
    ['private', Buffer.concat([Buffer.from([0x17, 0x00, 0x03, 0x2a]), Buffer.alloc(44)])],
    ['short', good.subarray(0, 40)],
    ['trailer', Buffer.concat([good, Buffer.alloc(5)])],
    ['mode', with0(0x24)],
    ['mode', with0(0x21)],
    ['version', with0(0x2b)],
    ['version', with0(0x03)],
    ['authenticated', vector('chronyd-keyed-request.hex')],
  ];
  const replies = await exchange(port, cases.map((c) => c[1]));
  t.same(replies.filter(Boolean), [], 'no replies');
  const dropped = (reason: string) => metrics.value('bootherd_ntp_dropped_total', { reason });
  for (const reason of new Set(cases.map((c) => c[0]))) t.equal(dropped(reason), cases.filter((c) => c[0] === reason).length, `dropped{reason=${reason}}`);
  t.equal(metrics.value('bootherd_ntp_received_total'), cases.length);
  t.equal((await exchange(port, [good]))[0]?.length, 48, 'and the listener still answers');
  t.equal(metrics.value('bootherd_ntp_replies_total', { kind: 'time' }), 1);
  t.match(metrics.render(), /bootherd_ntp_stratum 7/);
});

t.test('a flood from one address is kissed and counted', async (t) => {
  const { metrics, port } = await startService(t, 'localStratum: 7, rateLimit: { burst: 4, leak: 1 }');
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const replies: Buffer[] = [];
  s.on('message', (b) => replies.push(b));
  for (let i = 0; i < 20; i++) s.send(vector('chronyd-request.hex'), port, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 300));
  s.close();
  const kisses = replies.filter((b) => b[1] === 0 && b.toString('latin1', 12, 16) === 'RATE');
  t.equal(replies.length - kisses.length, 4, 'the burst gets the time');
  t.equal(kisses.length, 8, 'then every second excess request a RATE kiss (leak 1)');
  t.equal(metrics.value('bootherd_ntp_replies_total', { kind: 'kiss-rate' }), 8);
  t.equal(metrics.value('bootherd_ntp_dropped_total', { reason: 'rate-limit' }), 8);
});

t.test('worker threads answer on the same port and report their counts', async (t) => {
  const { metrics, port } = await startService(t, 'localStratum: 7, rateLimit: { enabled: false }, workers: 2');
  const requests = Array.from({ length: 32 }, () => vector('ntpdig-request.hex'));
  const replies = await exchange(port, requests, 500);
  t.equal(replies.filter((b) => b && b[1] === 7).length, 32, 'every client is answered at stratum 7, whichever thread it reached');
  // Workers post their counts every second.
  const deadline = Date.now() + 5000;
  while (metrics.value('bootherd_ntp_replies_total', { kind: 'time' }) < 32 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.equal(metrics.value('bootherd_ntp_replies_total', { kind: 'time' }), 32, 'the counters add up across threads');
});
