/**
 * DHCP offers hang off the offering head's etcd session (issue 18), against a
 * real etcd member: an offer claimed with the session's lease is seen by
 * another head, and goes from both heads' stores when the lease goes (here
 * revoked, as etcd does when a dead head's TTL runs out); a binding does not
 * hang off the session; without a live session a head claims no offer.
 */
import t from 'tap';
import type { LeaseRecord } from '../../src/cluster/types.ts';
import { EtcdClient, EtcdSession } from '../../src/store/etcd-client.ts';
import { EtcdStore } from '../../src/store/etcd.ts';
import { StoreUnavailableError } from '../../src/store/store.ts';
import { startEtcd } from '../helpers/etcd.ts';
import { missingTools } from '../helpers/tools.ts';

const until = async (what: string, ok: () => boolean) => {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
};
const record = (ip: string, mac: string, state: LeaseRecord['state']): LeaseRecord =>
  ({ ip, mac, subnet: '198.18.0.0/24', state, server: '198.18.0.1', expiresAt: Date.now() + 60_000, updatedAt: Date.now() });

t.test('an offer hangs off the head\'s session; a binding does not; no session, no offer', { skip: missingTools('etcd', 'etcdctl') }, async (t) => {
  const etcd = await startEtcd();
  t.teardown(() => etcd.close());
  const open = async () => {
    const client = new EtcdClient({ endpoints: etcd.endpoints, requestTimeoutMs: 2000 });
    const store = new EtcdStore({ client, cluster: 'offers' });
    await store.open();
    t.teardown(async () => { await store.close(); client.close(); });
    return { client, store };
  };
  const a = await open();
  const b = await open();
  const session = await EtcdSession.create(a.client, 30);
  a.store.offersOn(() => (session.alive ? session.lease : undefined));

  const offered = record('198.18.0.100', '52:54:00:00:07:01', 'offered');
  t.ok((await a.store.claim(offered.mac, offered, a.store.claimRevisions(offered.ip, offered.mac))).claimed, 'the offer is claimed');
  const bound = record('198.18.0.101', '52:54:00:00:07:02', 'bound');
  t.ok((await a.store.claim(bound.mac, bound, a.store.claimRevisions(bound.ip, bound.mac))).claimed, 'a binding is claimed');
  await until('b sees both', () => b.store.get('leases', offered.ip) !== undefined && b.store.get('leases', bound.ip) !== undefined);
  const leaseOf = (ip: string) => JSON.parse(etcd.ctl('get', `/bootherd/offers/leases/${ip}`, '-w', 'json')) as { kvs: { lease?: number }[] };
  t.ok(leaseOf(offered.ip).kvs[0]!.lease, 'the offer\'s key has the session\'s lease');
  t.notOk(leaseOf(bound.ip).kvs[0]!.lease, 'the binding\'s key has none');

  await session.close();
  await until('the offer goes from both heads', () => a.store.get('leases', offered.ip) === undefined && b.store.get('leases', offered.ip) === undefined);
  t.equal(b.store.claimedBy(offered.mac), undefined, 'and so does the client\'s index entry it wrote');
  t.equal(b.store.get('leases', bound.ip)?.state, 'bound', 'the binding stays');

  const next = record('198.18.0.102', '52:54:00:00:07:03', 'offered');
  await t.rejects(a.store.claim(next.mac, next, a.store.claimRevisions(next.ip, next.mac)), StoreUnavailableError, 'no live session: no offer is claimed');
  const free = await b.store.claim(offered.mac, { ...offered, server: '198.18.0.2' }, b.store.claimRevisions(offered.ip, offered.mac));
  t.ok(free.claimed, 'another head claims the freed address as never used (revision 0)');
});
