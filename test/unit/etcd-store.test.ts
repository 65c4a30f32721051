/**
 * The etcd store's faults against a real 3-member cluster on loopback, the
 * store's client pointed at member m0 only: while m0 is down writes fail with
 * StoreUnavailableError (the API answers 503 naming etcd) and reads answer from
 * the cache; when m0 is back, writes work and the cache catches up with what
 * other heads wrote meanwhile, with no restart. A compaction the watch cannot
 * cross makes the cache reload from one revision.
 */
import t from 'tap';
import { EtcdClient } from '../../src/store/etcd-client.ts';
import { EtcdStore } from '../../src/store/etcd.ts';
import { StoreUnavailableError, type StoreChange } from '../../src/store/store.ts';
import { startEtcd } from '../helpers/etcd.ts';
import { startHttpServer } from '../helpers/http-server.ts';
import { missingTools } from '../helpers/tools.ts';

const until = async (what: string, ok: () => boolean) => {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
};
const hostValue = (name: string, ip: string) => JSON.stringify({ name, ip });

t.test('etcd store faults', { skip: missingTools('etcd', 'etcdctl') }, async (t) => {
  const cluster = await startEtcd({ members: 3 });
  t.teardown(() => cluster.close());
  const [m0, m1] = cluster.members;
  const client = new EtcdClient({ endpoints: [m0!.clientUrl], requestTimeoutMs: 1500 });
  t.teardown(() => client.close());
  const store = new EtcdStore({ client, cluster: 'test' });
  const changes: StoreChange[] = [];
  store.onChange((c) => changes.push(c));
  const s = await startHttpServer(t, { store });
  // Another head's view of etcd: through m1, which stays up.
  // Killing m0 may cost the cluster its raft leader: retry while m1 and m2 elect another.
  const other = (...args: string[]) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return cluster.ctlAt([m1!], '--command-timeout=5s', ...args);
      } catch (e) {
        if (attempt === 6) throw e;
      }
    }
  };
  const hostKey = (name: string) => store.keyOf('hosts', name);
  const post = (name: string, ip: string) => s.authed('/api/v1/hosts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, ip }) });

  t.test('writes go through the API to etcd', async (t) => {
    const res = await post('before', '198.18.0.200');
    t.equal(res.status, 201, await res.clone().text());
    t.match(other('get', hostKey('before'), '--print-value-only'), /198\.18\.0\.200/, 'in etcd');
  });

  t.test('etcd unreachable: writes fail at once, naming etcd; reads answer from the cache', async (t) => {
    await m0!.kill();
    const res = await post('during', '198.18.0.201');
    t.equal(res.status, 503);
    t.match(((await res.json()) as { message: string }).message, /etcd is unreachable/);
    await t.rejects(store.put('hosts', 'direct', { name: 'direct', ip: '198.18.0.202' } as never), StoreUnavailableError);
    t.equal(store.get('hosts', 'direct'), undefined, 'a failed put is taken back');
    t.ok(changes.some((c) => c.key === 'direct' && c.value === undefined), 'with a change event');
    const hosts = await s.authed('/api/v1/hosts');
    t.equal(hosts.status, 200, 'reads still answer');
    t.match(await hosts.text(), /"before"/);
    t.notOk(store.status().connected);
    // Another head keeps writing through the members that are up.
    other('put', hostKey('meanwhile'), hostValue('meanwhile', '198.18.0.203'));
    other('del', hostKey('before'));
  });

  t.test('etcd back: writes work and the cache catches up, no restart', async (t) => {
    await m0!.restart();
    await until('the cache catches up', () => store.get('hosts', 'meanwhile') !== undefined && store.get('hosts', 'before') === undefined);
    t.pass('the other head\'s put and delete arrived');
    const res = await post('after', '198.18.0.204');
    t.equal(res.status, 201);
    t.ok(store.status().connected);
  });

  t.test('a compaction the watch cannot cross: the cache reloads from one revision', async (t) => {
    const reloads = store.status().reloads;
    await m0!.kill();
    other('put', hostKey('compacted'), hostValue('compacted', '198.18.0.205'));
    other('del', hostKey('after'));
    other('put', hostKey('meanwhile'), hostValue('meanwhile', '198.18.0.206'));
    const rev = Number(/"revision":(\d+)/.exec(other('get', hostKey('meanwhile'), '-w', 'json'))![1]);
    other('compaction', String(rev));
    changes.length = 0;
    await m0!.restart();
    await until('the reload', () => store.status().reloads > reloads && store.get('hosts', 'compacted') !== undefined);
    t.equal(store.get('hosts', 'after'), undefined, 'a key deleted behind the compaction is gone');
    t.match(store.get('hosts', 'meanwhile'), { ip: '198.18.0.206' });
    t.same(changes.map((c) => [c.key, c.value === undefined]).sort(), [['after', true], ['compacted', false], ['meanwhile', false]], 'one change event per difference');
    await until('the watch runs again', () => { try { other('put', hostKey('live'), hostValue('live', '198.18.0.207')); } catch { /* retry */ } return store.get('hosts', 'live') !== undefined; });
    t.pass('and the watch follows again');
  });

  t.test('a store given every member moves to another when its member dies', async (t) => {
    const all = new EtcdClient({ endpoints: cluster.endpoints, requestTimeoutMs: 1500 });
    t.teardown(() => all.close());
    const head = new EtcdStore({ client: all, cluster: 'test' });
    await head.open();
    t.teardown(() => head.close());
    t.equal(all.endpoint, m0!.clientUrl, 'it starts on m0');
    await m0!.kill();
    let wrote = false;
    for (let i = 0; i < 10 && !wrote; i++) {
      wrote = await head.put('hosts', 'failover', { name: 'failover', ip: '198.18.0.208' } as never).then(() => true, () => false);
    }
    t.ok(wrote, 'a write goes through another member');
    t.not(all.endpoint, m0!.clientUrl);
    other('put', hostKey('seen-after-failover'), hostValue('seen-after-failover', '198.18.0.209'));
    await until('its watch follows on the other member', () => head.get('hosts', 'seen-after-failover') !== undefined);
    t.pass('and its cache follows');
  });
});
