/**
 * One contract for every Store: memory, embedded and etcd (a real member on
 * loopback) — reads, change events, revisions, guarded transactions and DHCP
 * claims: of two concurrent claims of one address (or of two addresses for
 * one client) exactly one wins, and the loser learns what won.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LeaseRecord, NodeRecord } from '../../src/cluster/types.ts';
import { EmbeddedStore } from '../../src/store/embedded.ts';
import { EtcdClient } from '../../src/store/etcd-client.ts';
import { EtcdStore } from '../../src/store/etcd.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { Store, StoreChange } from '../../src/store/store.ts';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.ts';
import { missingTools } from '../helpers/tools.ts';

const lease = (ip: string, mac: string, expiresAt = 2_000_000_000_000): LeaseRecord =>
  ({ ip, mac, subnet: '198.18.0.0/24', state: 'bound', expiresAt, updatedAt: 1 });
const node = (name: string, ip: string) => ({ name, macs: ['52:54:00:00:00:01'], ip, profile: 'compute', source: 'api' }) as unknown as NodeRecord;

interface Kind {
  readonly name: string;
  /** A fresh, opened store; the second call in a test gives another head on the same data where the kind has one. */
  make(t: { teardown(fn: () => unknown): void }): Promise<{ store: Store; peer?: () => Promise<Store> }>;
}

let etcd: EtcdCluster | undefined;
let prefixes = 0;
const kinds: Kind[] = [
  { name: 'memory', make: async () => { const s = new MemoryStore(); await s.open(); return { store: s }; } },
  {
    name: 'embedded',
    make: async (t) => {
      const s = new EmbeddedStore(mkdtempSync(path.join(os.tmpdir(), 'bootherd-contract-')));
      await s.open();
      t.teardown(() => s.close());
      return { store: s };
    },
  },
  {
    name: 'etcd',
    make: async (t) => {
      etcd ??= await startEtcd();
      const cluster = `c${++prefixes}`;
      const open = async () => {
        const client = new EtcdClient({ endpoints: etcd!.endpoints, requestTimeoutMs: 2000 });
        const s = new EtcdStore({ client, cluster });
        await s.open();
        t.teardown(async () => { await s.close(); client.close(); });
        return s;
      };
      return { store: await open(), peer: open };
    },
  },
];
t.teardown(() => etcd?.close());

const until = async (what: string, ok: () => boolean) => {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
};

for (const kind of kinds) {
  t.test(kind.name, { skip: kind.name === 'etcd' && missingTools('etcd', 'etcdctl') }, async (t) => {
    t.test('put, get, values, delete and their change events', async (t) => {
      const { store } = await kind.make(t);
      const seen: StoreChange[] = [];
      store.onChange((c) => seen.push(c));
      await store.put('nodes', 'n1', node('n1', '198.18.0.11'));
      t.same(store.get('nodes', 'n1'), node('n1', '198.18.0.11'));
      t.equal(store.size('nodes'), 1);
      t.same([...store.values('nodes')].map((n) => n.name), ['n1']);
      await store.delete('nodes', 'n1');
      t.equal(store.get('nodes', 'n1'), undefined);
      await store.delete('nodes', 'n1');
      t.same(seen.map((c) => [c.collection, c.key, c.value === undefined]), [['nodes', 'n1', false], ['nodes', 'n1', true]], 'one event per change');
    });

    t.test('revisions: 0 when absent, growing with each write, 0 again after a delete', async (t) => {
      const { store } = await kind.make(t);
      t.equal(store.revision('hosts', 'a'), 0);
      await store.put('hosts', 'a', { name: 'a', ip: '198.18.0.250' } as never);
      const r1 = store.revision('hosts', 'a');
      t.ok(r1 > 0);
      await store.put('hosts', 'a', { name: 'a', ip: '198.18.0.251' } as never);
      t.ok(store.revision('hosts', 'a') > r1);
      await store.delete('hosts', 'a');
      t.equal(store.revision('hosts', 'a'), 0);
    });

    t.test('transact: applies all when the guards hold, nothing when one is stale', async (t) => {
      const { store } = await kind.make(t);
      const l1 = lease('198.18.0.101', '52:54:00:00:01:01');
      t.ok(await store.transact([{ collection: 'leases', key: l1.ip, revision: 0 }], [{ op: 'put', collection: 'leases', key: l1.ip, value: l1 }]), 'create if absent');
      t.notOk(await store.transact([{ collection: 'leases', key: l1.ip, revision: 0 }], [{ op: 'put', collection: 'leases', key: l1.ip, value: { ...l1, mac: 'x' } }]), 'again: refused');
      t.equal(store.get('leases', l1.ip)?.mac, l1.mac, 'nothing written');
      const rev = store.revision('leases', l1.ip);
      const l2 = lease('198.18.0.102', '52:54:00:00:01:02');
      t.notOk(await store.transact(
        [{ collection: 'leases', key: l1.ip, revision: rev }, { collection: 'leases', key: l2.ip, revision: rev }],
        [{ op: 'delete', collection: 'leases', key: l1.ip }, { op: 'put', collection: 'leases', key: l2.ip, value: l2 }],
      ), 'one stale guard of two: refused');
      t.equal(store.get('leases', l2.ip), undefined, 'and no op of it applied');
      t.ok(await store.transact([{ collection: 'leases', key: l1.ip, revision: rev }], [{ op: 'delete', collection: 'leases', key: l1.ip }, { op: 'put', collection: 'leases', key: l2.ip, value: l2 }]));
      t.equal(store.get('leases', l1.ip), undefined, 'guarded delete applied');
      t.equal(store.get('leases', l2.ip)?.mac, l2.mac, 'with its put');
    });

    t.test('two concurrent claims of one address: exactly one succeeds', async (t) => {
      const { store, peer } = await kind.make(t);
      const other = peer ? await peer() : store;
      const ip = '198.18.0.110';
      const a = lease(ip, '52:54:00:00:02:01');
      const b = lease(ip, '52:54:00:00:02:02');
      // Both read the state before either claims: the race two heads run.
      const ea = store.claimRevisions(ip, a.mac);
      const eb = other.claimRevisions(ip, b.mac);
      const [ra, rb] = await Promise.all([store.claim(a.mac, a, ea), other.claim(b.mac, b, eb)]);
      t.equal([ra, rb].filter((r) => r.claimed).length, 1, 'one winner');
      const [winner, loser] = ra.claimed ? [a, rb] : [b, ra];
      t.notOk(loser.claimed);
      if (!loser.claimed) {
        t.equal(loser.address.lease?.mac, winner.mac, 'the loser is told who holds it');
        t.ok(loser.address.revision > 0);
      }
      await until('both caches', () => store.get('leases', ip)?.mac === winner.mac && other.get('leases', ip)?.mac === winner.mac);
      t.pass('every head sees the winner');
    });

    t.test('many claims of one address at once: exactly one succeeds', async (t) => {
      const { store, peer } = await kind.make(t);
      const heads = [store, ...(peer ? [await peer(), await peer()] : [])];
      const ip = '198.18.0.111';
      const tries = Array.from({ length: 12 }, (_, i) => {
        const s = heads[i % heads.length]!;
        const l = lease(ip, `52:54:00:00:03:${i.toString(16).padStart(2, '0')}`);
        return { s, l, expect: s.claimRevisions(ip, l.mac) };
      });
      const claims = tries.map(({ s, l, expect }) => s.claim(l.mac, l, expect));
      t.equal((await Promise.all(claims)).filter((r) => r.claimed).length, 1);
    });

    t.test('a storm of claims over few addresses and clients: each address and each client won at most once, as the store holds it', async (t) => {
      const { store, peer } = await kind.make(t);
      const heads = [store, ...(peer ? [await peer(), await peer()] : [])];
      // 180 claims of 20 addresses by 45 clients, all judged from the same empty view: the batch Txns mix claims that collide.
      const tries = Array.from({ length: 180 }, (_, i) => {
        const s = heads[i % heads.length]!;
        const ip = `198.18.0.${130 + (i % 20)}`;
        const l = lease(ip, `52:54:00:00:05:${(i % 45).toString(16).padStart(2, '0')}`);
        return { s, l, expect: s.claimRevisions(ip, l.mac) };
      });
      const outcomes = await Promise.all(tries.map(({ s, l, expect }) => s.claim(l.mac, l, expect)));
      const won = tries.filter((_, i) => outcomes[i]!.claimed).map(({ l }) => l);
      t.ok(won.length > 0, 'some claims won');
      t.equal(new Set(won.map((l) => l.ip)).size, won.length, 'no address won twice');
      t.equal(new Set(won.map((l) => l.mac)).size, won.length, 'no client won twice');
      await until('every head sees the winners', () => heads.every((h) => won.every((l) => h.get('leases', l.ip)?.mac === l.mac)));
      if (store instanceof EtcdStore) {
        const { claims, claimTxns } = store.status();
        t.ok(claimTxns < claims, `claims share Txns (${claims} claims in ${claimTxns} Txns)`);
      }
    });

    t.test('one client claiming two addresses at once: exactly one succeeds', async (t) => {
      const { store, peer } = await kind.make(t);
      const other = peer ? await peer() : store;
      const mac = '52:54:00:00:04:01';
      const e1 = store.claimRevisions('198.18.0.120', mac);
      const e2 = other.claimRevisions('198.18.0.121', mac);
      const [r1, r2] = await Promise.all([store.claim(mac, lease('198.18.0.120', mac), e1), other.claim(mac, lease('198.18.0.121', mac), e2)]);
      t.equal([r1, r2].filter((r) => r.claimed).length, 1);
      const lost = r1.claimed ? r2 : r1;
      if (!lost.claimed) t.match(lost.client.ip, /^198\.18\.0\.12[01]$/, 'the loser is told where the client went');
    });

    t.test('a stale expectation is refused; the refusal\'s revisions make the retry succeed', async (t) => {
      const { store } = await kind.make(t);
      const ip = '198.18.0.130';
      const old = lease(ip, '52:54:00:00:05:01', 1);
      const first = await store.claim(old.mac, old, store.claimRevisions(ip, old.mac));
      t.ok(first.claimed);
      const next = lease(ip, '52:54:00:00:05:02');
      const stale = await store.claim(next.mac, next, { address: 0, client: 0 });
      t.notOk(stale.claimed, 'claiming as if absent is refused');
      if (stale.claimed) return;
      // The old lease has expired (expiresAt 1): the caller decides it may take the address over.
      const retry = await store.claim(next.mac, next, { address: stale.address.revision, client: stale.client.revision });
      t.ok(retry.claimed, 'retry with what the store holds');
      t.equal(store.get('leases', ip)?.mac, next.mac);
      const renewal = await store.claim(next.mac, { ...next, expiresAt: 2_100_000_000_000 }, store.claimRevisions(ip, next.mac));
      t.ok(renewal.claimed, 'a renewal with the cache\'s revisions');
      t.equal(store.get('leases', ip)?.expiresAt, 2_100_000_000_000);
    });
  });
}
