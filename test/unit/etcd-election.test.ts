/**
 * Leader election on a real etcd member with three candidates in their own
 * processes: the first to campaign leads and the others wait in line; kill -9
 * the leader and the next in line leads once the dead one's session expires;
 * the dead leader's fence no longer guards anything; a resign hands over at
 * once; an observer follows every change.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdClient, EtcdSession, prefixEnd } from '../../src/store/etcd-client.ts';
import { EtcdElection, ElectionLostError, type ElectionLeader } from '../../src/store/etcd-election.ts';
import { EtcdStore } from '../../src/store/etcd.ts';
import { startEtcd } from '../helpers/etcd.ts';
import { missingTools } from '../helpers/tools.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const candidateScript = path.join(here, '..', 'helpers', 'etcd-candidate.ts');
const TTL = 2;

interface Candidate { readonly name: string; readonly child: ChildProcess; out: string; leaderRevision?: number }

const until = async (what: string, ok: () => boolean, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

t.test('etcd election', { skip: missingTools('etcd', 'etcdctl') }, async (t) => {
  const cluster = await startEtcd();
  t.teardown(() => cluster.close());
  const client = new EtcdClient({ endpoints: cluster.endpoints });
  t.teardown(() => client.close());
  const prefix = '/bootherd/test/election/ntp';
  const observerSession = await EtcdSession.create(client, 5);
  t.teardown(() => observerSession.close());
  const observer = new EtcdElection(client, observerSession, prefix);
  const seen: (string | undefined)[] = [];
  let current: ElectionLeader | undefined;
  const stopObserving = observer.observe((l) => { current = l; seen.push(l?.value); });
  t.teardown(stopObserving);

  const candidates: Candidate[] = [];
  t.teardown(() => { for (const c of candidates) c.child.kill('SIGKILL'); });
  const start = (name: string) => {
    const child = spawn(process.execPath, ['--import', 'tsx', candidateScript, cluster.endpoints.join(','), prefix, name, String(TTL)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const c: Candidate = { name, child, out: '' };
    child.stdout!.on('data', (d: Buffer) => {
      c.out += d.toString();
      const m = /leader (\d+)/.exec(c.out);
      if (m) c.leaderRevision = Number(m[1]);
    });
    candidates.push(c);
    return c;
  };
  let keyCount = 0;
  const countKeys = setInterval(() => {
    client.range(Buffer.from(`${prefix}/`), prefixEnd(Buffer.from(`${prefix}/`)), { countOnly: true }).then((r) => { keyCount = r.count; }, () => {});
  }, 50);
  t.teardown(() => clearInterval(countKeys));
  const keys = () => keyCount;

  const a = start('a');
  await until('a leads', () => a.leaderRevision !== undefined);
  const b = start('b');
  await until('b in line', () => keys() === 2);
  const c = start('c');
  await until('c in line', () => keys() === 3);
  await until('a acts as leader', () => /acted/.test(a.out));
  await until('the observer names a', () => current?.value === 'a');
  t.equal(b.leaderRevision, undefined, 'b waits');
  t.equal(c.leaderRevision, undefined, 'c waits');

  const oldFence = { key: current!.key, createRevision: current!.createRevision };
  a.child.kill('SIGKILL');
  await until('the next in line leads after the dead leader\'s TTL', () => b.leaderRevision !== undefined || c.leaderRevision !== undefined);
  t.ok(b.leaderRevision !== undefined, 'b, the next in line, leads');
  t.equal(c.leaderRevision, undefined, 'c still waits');
  t.ok(b.leaderRevision! > a.leaderRevision!, 'the newer key');
  await until('the observer names b', () => current?.value === 'b');
  await until('b acts', () => /acted/.test(b.out));

  const store = new EtcdStore({ client, cluster: 'test' });
  await store.open();
  t.teardown(() => store.close());
  t.notOk(await store.transact([{ fence: oldFence }], [{ op: 'put', collection: 'hosts', key: 'x', value: { name: 'x', ip: '198.18.0.9' } as never }]), 'the dead leader\'s fence guards nothing');
  t.equal(store.get('hosts', 'x'), undefined);
  const bFence = { key: current!.key, createRevision: current!.createRevision };
  t.ok(await store.transact([{ fence: bFence }], [{ op: 'put', collection: 'hosts', key: 'y', value: { name: 'y', ip: '198.18.0.8' } as never }]), 'the live leader\'s does');

  b.child.kill('SIGTERM');
  await until('c leads after b resigns', () => c.leaderRevision !== undefined);
  await until('the observer names c', () => current?.value === 'c');
  t.same(seen.filter((v, i) => v !== seen[i - 1]), ['a', 'b', 'c'], 'the observer saw each leader in turn');

  t.test('a campaign ends when its session does', async (t) => {
    const s = await EtcdSession.create(client, 5);
    const e = new EtcdElection(client, s, prefix);
    const outcome = e.campaign('d').then(() => undefined, (err: unknown) => err);
    // d's own key, read now: the polled count can still show a key that just went (b's), before d's put is in.
    const inLine = async () => (await client.range(Buffer.from(`${prefix}/`), prefixEnd(Buffer.from(`${prefix}/`)))).kvs.some((kv) => kv.value.toString() === 'd');
    for (let i = 0; i < 500 && !(await inLine()); i++) await new Promise((r) => setTimeout(r, 20));
    t.ok(await inLine(), 'd is in line');
    await s.close();
    t.type(await outcome, ElectionLostError);
    t.equal(e.fence, undefined);
  });
});
