/**
 * A bootherd Server in this process, DNS on loopback (a free high port), and
 * dig as the client: changes through the cluster model resolve on the next
 * query, with one answering thread and with two workers; then fuzzed and
 * malformed datagrams, and the server still answers.
 */
import t from 'tap';
import packet from 'dns-packet';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { Server } from '../../src/server.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { dnsQueryVectors, seededRandom } from '../helpers/dns-vectors.ts';

async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function startServer(t: { teardown(fn: () => unknown): void }, workers: number): Promise<{ server: Server; port: number }> {
  const port = await freePort();
  const config = parseConfig(`
cluster: { domain: lab.test }
head: { name: head, address: 198.18.0.1 }
subnets: [{ network: 198.18.0.0/24 }]
dhcp: { enabled: false }
http: { enabled: false }
ntp: { enabled: false }
tftp: { enabled: false }
dns: { address: 127.0.0.1, port: ${port}, workers: ${workers} }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11 }
`, '<test>');
  const server = new Server(config, { store: new MemoryStore(), log: silentLogger });
  await server.start();
  t.teardown(() => server.stop());
  return { server, port };
}

/** dig, run without blocking: the server answering it lives in this process's event loop. */
const dig = (port: number, ...args: string[]) => new Promise<string>((resolve, reject) => {
  execFile('dig', ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=3', '+short', ...args], { encoding: 'utf8', timeout: 15_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout.trim())));
});

for (const workers of [1, 2]) {
  t.test(`changes resolve on the next query (${workers} answering thread${workers > 1 ? 's' : ''})`, async (t) => {
    const { server, port } = await startServer(t, workers);
    const model = server.model;
    // dig picks a new source port each run, so with two workers the kernel spreads these over both.
    const each = async (n: number, ...args: string[]) => { const out: string[] = []; for (let i = 0; i < n; i++) out.push(await dig(port, ...args)); return out; };

    t.same(await each(4, 'nas.lab.test'), ['', '', '', ''], 'unknown at first');
    await model.addHost({ name: 'nas', ip: '198.18.0.50' });
    t.same(await each(6, 'nas.lab.test'), Array(6).fill('198.18.0.50'), 'a host added through the model resolves at once');
    t.same(await each(2, '-x', '198.18.0.50'), Array(2).fill('nas.lab.test.'), 'both ways');

    await model.addNode({ name: 'n002', macs: ['52:54:00:00:00:02'], ip: '198.18.0.12' });
    t.same(await each(4, 'n002.lab.test'), Array(4).fill('198.18.0.12'), 'a node added through the model');
    await model.addSrv({ name: '_slurmctld._tcp', target: 'n002', port: 6817 });
    t.same(await each(4, '_slurmctld._tcp.lab.test', 'SRV'), Array(4).fill('0 0 6817 n002.lab.test.'), 'an SRV record');

    await model.removeHost('nas');
    t.same(await each(4, 'nas.lab.test'), ['', '', '', ''], 'a removed host is gone');
    await model.removeNode('n002');
    t.same(await each(4, 'n002.lab.test'), ['', '', '', ''], 'a removed node is gone');

    const now = Date.now();
    await server.store.put('leases', '198.18.0.140', { ip: '198.18.0.140', mac: '52:54:00:00:01:40', hostname: 'laptop', subnet: '198.18.0.0/24', state: 'bound', expiresAt: now + 60_000, updatedAt: now });
    t.same(await each(4, 'laptop.lab.test'), Array(4).fill('198.18.0.140'), 'a named lease written to the store');
    await server.store.delete('leases', '198.18.0.140');
    t.same(await each(4, 'laptop.lab.test'), ['', '', '', ''], 'gone with its lease');
  });
}

t.test('fuzzed and malformed queries: answered or dropped, counted, never fatal', async (t) => {
  const { server, port } = await startServer(t, 1);
  const seeds = dnsQueryVectors();
  const rnd = seededRandom(11);
  const datagram = (): Buffer => {
    const kind = rnd(10);
    if (kind === 0) return Buffer.from(Array.from({ length: rnd(600) }, () => rnd(256))); // noise
    if (kind === 1) return Buffer.alloc(5000, rnd(256)); // larger than a receive slot
    const seed = seeds[rnd(seeds.length)]!;
    const b = Buffer.from(seed.subarray(0, kind === 2 ? rnd(seed.length) : seed.length));
    for (let k = rnd(5); k >= 0 && b.length > 2; k--) b[2 + rnd(b.length - 2)] = kind === 3 ? 0xc0 : rnd(256);
    return b;
  };

  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  t.teardown(() => sock.close());
  let replies = 0;
  const bad: string[] = [];
  sock.on('message', (msg) => {
    replies++;
    try {
      const d = packet.decode(msg);
      if (d.type !== 'response') bad.push(msg.toString('hex'));
    } catch { bad.push(msg.toString('hex')); }
  });
  const TOTAL = 20_000;
  for (let sent = 0; sent < TOTAL;) {
    // Bursts of 200, then a turn of the event loop, so the test's own socket keeps up.
    for (let i = 0; i < 200; i++, sent++) sock.send(datagram(), port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 2));
  }
  await new Promise((r) => setTimeout(r, 300));
  t.same(bad, [], 'every reply is a well-formed DNS response');
  t.ok(replies > 1000, `${replies} replies to ${TOTAL} datagrams`);
  const dropped = (reason: string) => server.metrics.value('bootherd_dns_dropped_total', { reason });
  for (const reason of ['short', 'truncated', 'pointer', 'oversized']) t.ok(dropped(reason) > 0, `malformed datagrams counted: ${reason} ${dropped(reason)}`);
  t.ok(server.metrics.value('bootherd_dns_responses_total', { rcode: 'FORMERR' }) > 0, 'FORMERR sent');

  // TCP: a frame too short to be a query ends the connection; a good one on a new connection is answered.
  const closed = await new Promise<boolean>((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(Buffer.from([0, 2, 0xde, 0xad])));
    const timer = setTimeout(() => { c.destroy(); resolve(false); }, 5000);
    c.on('close', () => { clearTimeout(timer); resolve(true); });
    c.on('error', () => undefined);
  });
  t.ok(closed, 'a garbage TCP frame closes the connection');
  t.equal(await dig(port, '+tcp', 'n001.lab.test'), '198.18.0.11', 'TCP still answers');
  t.equal(await dig(port, 'n001.lab.test'), '198.18.0.11', 'UDP still answers');
});
