/**
 * bench/dhcp/loadgen.c, the benchmark's DHCP load generator: it builds, and a
 * small run of 200 clients completes full DORA against bootherd, relayed
 * (from 198.18.0.9 as giaddr) and broadcast (clients on the head's segment),
 * with every reply checked and no address ACKed to two MACs. Its duplicate
 * check must be able to fail: against its own trivial responder, which
 * derives the address from the MAC modulo the pool, 300 clients over a
 * 256-address pool must be reported as duplicate ACKs. Relayed to several
 * servers (-s A,B), every message goes to each.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLabServer } from '../helpers/lab-server.ts';

const SOURCE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/dhcp/loadgen.c');
const POOL = '198.18.1.0-198.18.1.255';

const config = (state: string) => `
head: { address: 198.18.0.1 }
state: ${state}
dns: { enabled: false }
ntp: { enabled: false }
tftp: { enabled: false }
http: { enabled: false }
subnets:
  - { network: 198.18.0.0/16, interface: eth0, pool: ${POOL}, leaseTime: 1h }
`;

interface Summary { clients: number; acks: number; sent: number; duplicate_replies: number; naks: number; drops: number; duplicate_acks: number; bad_replies: number; offers: number }

t.test('the C load generator completes 200 DORA exchanges against bootherd with no duplicate address', async (t) => {
  const s = await startLabServer(t, { tag: 'lg', config, headCidr: '198.18.0.1/16', clients: 1, clientCidr: () => '198.18.0.9/16' });
  const gen = path.join(s.dir, 'dhcp-loadgen');
  execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-o', gen, SOURCE]);
  const ns = s.lab.clients[0]!.ns;
  const run = (mode: string[], seed: number): Summary => {
    const r = s.lab.run(ns, gen, [...mode, '-P', POOL, '-n', '200', '-r', '500', '-T', '10', '-t', '1000', '-R', '3', '-S', String(seed)], 60_000);
    t.equal(r.code, 0, `the generator exits 0 (${r.stderr.trim()})`);
    return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Summary;
  };

  const relayed = run(['-M', 'relay', '-s', '198.18.0.1', '-g', '198.18.0.9'], 1);
  t.match(relayed, { clients: 200, offers: 200, acks: 200, naks: 0, drops: 0, duplicate_acks: 0, bad_replies: 0 }, 'relayed: every client bound, every reply valid');

  // Other MACs (seed 2), within the 56 addresses the relayed run left free.
  const broadcast = s.lab.run(ns, gen, ['-M', 'broadcast', '-i', 'eth0', '-P', POOL, '-n', '50', '-r', '500', '-T', '10', '-t', '1000', '-R', '3', '-S', '2'], 60_000);
  t.equal(broadcast.code, 0, `broadcast run exits 0 (${broadcast.stderr.trim()})`);
  t.match(JSON.parse(broadcast.stdout.trim().split('\n').at(-1)!), { clients: 50, acks: 50, naks: 0, drops: 0, duplicate_acks: 0, bad_replies: 0 }, 'broadcast: every client bound, every reply valid');
});

t.test('the duplicate-ACK check reports an address ACKed to two MACs', async (t) => {
  const s = await startLabServer(t, { tag: 'lgd', config, headCidr: '198.18.0.1/16', clients: 2, clientCidr: (i) => `198.18.0.${9 + i}/16` });
  const gen = path.join(s.dir, 'dhcp-loadgen');
  execFileSync('gcc', ['-O2', '-Wall', '-o', gen, SOURCE]);
  const responder = s.lab.spawn(s.lab.clients[1]!.ns, gen, ['-M', 'respond', '-s', '198.18.0.10', '-P', POOL, '-T', '20']);
  t.teardown(() => { responder.kill(); });
  await new Promise((r) => setTimeout(r, 300));
  const r = s.lab.run(s.lab.clients[0]!.ns, gen, ['-M', 'relay', '-s', '198.18.0.10', '-g', '198.18.0.9', '-P', POOL, '-n', '300', '-r', '1000', '-T', '10', '-t', '1000', '-R', '3'], 60_000);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Summary;
  t.equal(summary.acks, 300, 'the responder answered every client');
  t.equal(summary.duplicate_acks, 44, 'the 44 clients past the 256-address pool got addresses already ACKed to others');

  // -s A,B forwards every message to each server, as a relay with two servers does: the same server twice answers every message twice.
  const twice = s.lab.run(s.lab.clients[0]!.ns, gen, ['-M', 'relay', '-s', '198.18.0.10,198.18.0.10', '-g', '198.18.0.9', '-P', POOL, '-n', '100', '-r', '1000', '-T', '10', '-t', '1000', '-R', '3'], 60_000);
  t.match(JSON.parse(twice.stdout.trim().split('\n').at(-1)!), { acks: 100, duplicate_acks: 0, duplicate_replies: 200, sent: 400 }, 'two copies of each DISCOVER and REQUEST; the second OFFER and ACK of each client are duplicate replies');
});
