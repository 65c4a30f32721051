/**
 * The local etcd member bootherd runs for `store: { kind: etcd }` without
 * endpoints: a real etcd started and supervised (restarted after kill -9),
 * and the head registry on it (liveness by lease, differing cluster files).
 * One member on loopback, on ports the kernel hands out.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { EtcdMember, etcdArgs } from '../../src/store/etcd-member.ts';
import { HeadRegistry } from '../../src/store/etcd-heads.ts';
import { EtcdClient } from '../../src/store/etcd-client.ts';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const a = srv.address(); srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0)); });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function healthy(url: string): Promise<true | undefined> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
    return ((await res.json()) as { health?: string }).health === 'true' ? true : undefined;
  } catch { return undefined; }
}

function capture(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  let text = '';
  const sink = new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } });
  return { log: pino({ level: 'debug' }, sink), lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

t.test('a member is started, restarted after kill -9, and stopped; its log reaches bootherd\'s', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-member-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { log, lines } = capture();
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const opts = {
    name: 'h1', address: '127.0.0.1', heads: [{ name: 'h1', address: '127.0.0.1' }], dataDir: path.join(dir, 'etcd'),
    clusterToken: `t${process.pid}`, log, clientPort, peerPort, restartDelayMs: 100,
  };
  t.match(etcdArgs(opts), ['--name', 'h1'], 'named after the head');
  t.ok(etcdArgs(opts).join(' ').includes('--initial-cluster-state new'), 'a fresh data directory bootstraps a new cluster');
  const member = new EtcdMember(opts);
  t.teardown(() => member.stop());
  member.start();
  await until('the member to be healthy', () => healthy(member.clientUrl));
  t.ok(lines().some((l) => String(l['msg']).startsWith('etcd: ') && l['component'] === 'etcd'), 'etcd\'s own log lines come through bootherd\'s logger');

  const first = member.pid!;
  process.kill(first, 'SIGKILL');
  await until('a restarted member', () => (member.restarts >= 1 && member.pid !== first ? true : undefined));
  await until('the restarted member to be healthy', () => healthy(member.clientUrl));
  t.ok(lines().some((l) => l['msg'] === 'etcd member exited; restarting it' && l['signal'] === 'SIGKILL'), 'the death is logged, with its signal');
  t.ok(etcdArgs(opts).join(' ').includes('--initial-cluster-state existing'), 'the data directory now holds a member');

  const pid = member.pid!;
  await member.stop();
  t.throws(() => process.kill(pid, 0), 'stop() ends the member');
  t.ok(lines().some((l) => l['msg'] === 'etcd member stopped'), 'and says so');
});

t.test('heads see each other through etcd: alive by lease, and which fields of their files differ', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-member-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { log, lines } = capture();
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const member = new EtcdMember({ name: 'h1', address: '127.0.0.1', heads: [{ name: 'h1', address: '127.0.0.1' }], dataDir: path.join(dir, 'etcd'), clusterToken: `t${process.pid}`, log, clientPort, peerPort });
  t.teardown(() => member.stop());
  member.start();
  await until('the member to be healthy', () => healthy(member.clientUrl));

  const heads = [{ name: 'a', address: '198.18.0.1' }, { name: 'b', address: '198.18.0.2' }];
  const client = new EtcdClient({ endpoints: [member.clientUrl] });
  t.teardown(() => client.close());
  const common = { client, prefix: `/t${process.pid}/`, heads, log, pollMs: 100 };
  const a = new HeadRegistry({ ...common, self: heads[0]!, fields: { nodes: 'n1', dhcp: 'd1', dns: 's1' } });
  const b = new HeadRegistry({ ...common, self: heads[1]!, fields: { nodes: 'n2', dhcp: 'd1', dns: 's2' } });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await a.start();
  await b.start();
  const seen = await until('a to see b', () => a.heads().find((h) => h.name === 'b' && h.alive));
  t.same(seen.configDiffers, ['dns', 'nodes'], 'the differing fields by name');
  t.same(a.heads().find((h) => h.name === 'a'), { name: 'a', address: '198.18.0.1', self: true, alive: true, configDiffers: [] }, 'itself');
  await until('the difference to be logged', () => lines().find((l) => l['head'] === 'b' && String(l['msg']).includes('differs from this head\'s in: dns, nodes')));
  await b.stop();
  await until('a to see b gone', () => (a.heads().find((h) => h.name === 'b')?.alive === false ? true : undefined));
  t.pass('a stopped head is gone at once (its lease revoked)');
});
