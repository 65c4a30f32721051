/**
 * TCP slots against a trickle (a security finding): connections that send a
 * length of 0xffff and then one byte every second kept every TCP slot busy,
 * because each byte reset the idle timer, and a real `dig +tcp` was reset.
 * Scaled down here: 8 slots, 4 per client address, a message must arrive
 * within 2 s of its first byte, and an idle timeout (30 s) longer than the
 * whole trickle, so only the new bounds can end it.
 *
 *   c0 198.18.0.20  the trickler: 12 connections, 10 bytes each at 1 s
 *   c1 198.18.0.10  dig +tcp, while the trickle runs
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startLabServer } from '../helpers/lab-server.ts';

const HEAD = '198.18.0.1';
const CONNECTIONS = 12;
const BYTES = 10;

const config = (state: string) => `
cluster: { domain: lab.test }
head: { name: head, address: ${HEAD} }
state: ${state}
log: { level: info }
subnets:
  - network: 198.18.0.0/25
    interface: eth0
dhcp: { enabled: false }
tftp: { enabled: false }
ntp: { enabled: false }
dns:
  tcpConnections: 8
  tcpConnectionsPerClient: 4
  tcpMessageTimeout: 2
  tcpIdleTimeout: 30
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11 }
`;

/** Opens CONNECTIONS connections, each sending a 0xffff length, then a byte a second; prints how each ended. */
const TRICKLER = `
const net = require('node:net');
const start = Date.now();
const ends = [];
let open = 0;
for (let i = 0; i < ${CONNECTIONS}; i++) {
  const c = net.connect({ host: '${HEAD}', port: 53 });
  const r = { sent: 0, closedBy: 'server' };
  let timer;
  c.on('connect', () => {
    c.write(Buffer.from([0xff, 0xff]));
    timer = setInterval(() => {
      if (r.sent >= ${BYTES}) { r.closedBy = 'trickler'; clearInterval(timer); c.destroy(); return; }
      c.write(Buffer.from([0])); r.sent++;
    }, 1000);
  });
  c.on('error', () => {});
  c.on('close', () => {
    clearInterval(timer);
    ends.push(r);
    if (ends.length === ${CONNECTIONS}) { process.stdout.write(JSON.stringify(ends)); process.exit(0); }
  });
}
setTimeout(() => process.stderr.write('trickling\\n'), 500);
setTimeout(() => { process.stdout.write(JSON.stringify(ends)); process.exit(1); }, ${(BYTES + 10) * 1000});
`;

t.test('a trickle of bytes cannot hold the TCP slots', async (t) => {
  const s = await startLabServer(t, {
    tag: 'dt', clients: 2,
    clientCidr: (i) => ['198.18.0.20/24', '198.18.0.10/24'][i],
    config,
  });
  const [trickleHost, digHost] = s.lab.clients as [typeof s.lab.clients[0], typeof s.lab.clients[0]];
  const script = path.join(s.dir, 'trickle.cjs');
  writeFileSync(script, TRICKLER);
  const trickler = s.lab.spawn(trickleHost.ns, process.execPath, [script]);
  let out = '';
  trickler.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => trickler.once('exit', r));
  await new Promise<void>((resolve) => trickler.stderr!.once('data', () => resolve()));

  const dig = s.lab.run(digHost.ns, 'dig', [`@${HEAD}`, '+tcp', '+tries=1', '+time=4', '+short', 'n001.lab.test', 'A'], 20_000);
  t.equal(dig.stdout.trim(), '198.18.0.11', `dig +tcp is answered during the trickle (${dig.stdout.trim() || dig.stderr.trim()})`);

  t.equal(await exited, 0, 'every trickling connection ended before the trickler gave up');
  const ends = JSON.parse(out) as { sent: number; closedBy: string }[];
  t.equal(ends.length, CONNECTIONS);
  t.ok(ends.every((e) => e.closedBy === 'server' && e.sent < BYTES), `the server closed every one before its ${BYTES} bytes were out (bytes sent: ${ends.map((e) => e.sent).join(' ')})`);
  t.ok(ends.filter((e) => e.sent > 0).length <= 4, 'at most 4 (the per-client cap) were served long enough to trickle');

  const metrics = s.lab.run(digHost.ns, 'curl', ['-s', `http://${HEAD}/metrics`]).stdout;
  t.match(metrics, /bootherd_dns_tcp_closed_total\{reason="client-limit"\} [1-9]/, 'refused connections are counted');
  t.match(metrics, /bootherd_dns_tcp_closed_total\{reason="message-timeout"\} [1-9]/, 'and the trickles cut off');
});
