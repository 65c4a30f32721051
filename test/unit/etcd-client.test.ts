/** The etcd client against a real member: txn guards, range, watch (and its compaction cancel), sessions, status. */
import t from 'tap';
import { EtcdClient, EtcdSession, prefixEnd, type EtcdEvent } from '../../src/store/etcd-client.ts';
import { startEtcd } from '../helpers/etcd.ts';
import { missingTools } from '../helpers/tools.ts';

const b = (s: string) => Buffer.from(s);
const until = async (what: string, ok: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

t.test('etcd client', { skip: missingTools('etcd', 'etcdctl') }, async (t) => {
  const cluster = await startEtcd();
  t.teardown(() => cluster.close());
  const c = new EtcdClient({ endpoints: cluster.endpoints, requestTimeoutMs: 2000 });
  t.teardown(() => c.close());

  t.test('a guarded txn commits once; the second sees the key', async (t) => {
    const create = { compare: [{ key: b('/t/a'), target: 'CREATE' as const, createRevision: 0 }], success: [{ put: { key: b('/t/a'), value: b('1') } }] };
    const first = await c.txn(create);
    const second = await c.txn(create);
    t.ok(first.succeeded);
    t.notOk(second.succeeded);
    const kv = await c.get(b('/t/a'));
    t.equal(kv?.value.toString(), '1');
    t.equal(kv?.modRevision, first.revision);
    const moved = await c.txn({ compare: [{ key: b('/t/a'), target: 'MOD', modRevision: first.revision }], success: [{ put: { key: b('/t/a'), value: b('2') } }] });
    t.ok(moved.succeeded, 'a put guarded on the current revision goes through');
    const stale = await c.txn({ compare: [{ key: b('/t/a'), target: 'MOD', modRevision: first.revision }], success: [{ put: { key: b('/t/a'), value: b('3') } }] });
    t.notOk(stale.succeeded, 'a stale revision is refused');
  });

  t.test('range over a prefix, sorted by create revision', async (t) => {
    await c.put(b('/r/x'), b('x'));
    await c.put(b('/r/y'), b('y'));
    const r = await c.range(b('/r/'), prefixEnd(b('/r/')), { sort: { target: 'CREATE', order: 'DESCEND' } });
    t.same(r.kvs.map((kv) => kv.key.toString()), ['/r/y', '/r/x']);
    t.equal(r.count, 2);
  });

  t.test('a watch sees every change from its start; a compacted start is reported', async (t) => {
    const start = (await c.range(b('/w/'), prefixEnd(b('/w/')))).revision + 1;
    const seen: EtcdEvent[] = [];
    const w = c.watch({ key: b('/w/'), rangeEnd: prefixEnd(b('/w/')), startRevision: start }, { onEvents: (e) => seen.push(...e), onCompacted: () => t.fail('not compacted') });
    await c.put(b('/w/1'), b('a'));
    await c.delete(b('/w/1'));
    await until('two events', () => seen.length === 2);
    t.same(seen.map((e) => e.type), ['PUT', 'DELETE']);
    w.stop();
    const rev = await c.put(b('/w/2'), b('b'));
    await c.compact(rev);
    let compacted = 0;
    c.watch({ key: b('/w/'), rangeEnd: prefixEnd(b('/w/')), startRevision: start }, { onEvents: () => {}, onCompacted: (r) => { compacted = r; } });
    await until('the compaction cancel', () => compacted > 0);
    t.equal(compacted, rev);
  });

  t.test('a session keeps its key until closed', async (t) => {
    const s = await EtcdSession.create(c, 2);
    await c.put(b('/s/k'), b('v'), s.lease);
    await new Promise((r) => setTimeout(r, 3000));
    t.ok(await c.get(b('/s/k')), 'still there after more than the TTL');
    await s.close();
    t.equal(await c.get(b('/s/k')), undefined, 'gone on close');
    t.notOk(s.alive);
  });

  t.test('status and member list', async (t) => {
    const st = await c.status(cluster.endpoints[0]);
    t.not(st.leader, '0');
    t.match(st.version, /^3\./);
    const members = await c.memberList();
    t.equal(members.length, 1);
  });
});
