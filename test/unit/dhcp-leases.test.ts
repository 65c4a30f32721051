/** Address allocation: reservations, returning clients, requested addresses, exhaustion, quarantine. */
import t from 'tap';
import { parseConfig } from '../../src/config/load.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { LeaseTable } from '../../src/services/dhcp/leases.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { intToIp, ipToInt } from '../../src/net/ipv4.ts';

const config = parseConfig(`
head: { address: 198.18.0.1 }
subnets:
  - { network: 198.18.0.0/24, interface: eth0, router: 198.18.0.1, pool: 198.18.0.10-198.18.0.13 }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.12 }
`, '<test>');

function setup() {
  const store = new MemoryStore();
  const model = new ClusterModel(config, store);
  const leases = new LeaseTable(model, store, { offerMs: 60_000, declineMs: 600_000 });
  return { store, model, leases, subnet: model.subnets[0]! };
}
const now = 1_700_000_000_000;
const ip = (s: string) => ipToInt(s);

t.test('a reserved node gets its reservation, and nobody else gets it', async (t) => {
  const { leases, subnet } = setup();
  t.equal(leases.choose('52:54:00:00:00:01', subnet, ip('198.18.0.12'), undefined, now), ip('198.18.0.12'));
  t.equal(leases.check(ip('198.18.0.12'), 'aa:aa:aa:aa:aa:aa', subnet, undefined, now), 'reserved-for-other');
  const picks = new Set<number>();
  for (let i = 0; i < 3; i++) {
    const key = `aa:aa:aa:aa:aa:0${i}`;
    const a = leases.choose(key, subnet, undefined, undefined, now)!;
    leases.offer(a, key, now);
    picks.add(a);
  }
  t.notOk(picks.has(ip('198.18.0.12')), 'the pool skips a reserved address inside it');
  t.equal(picks.size, 3);
});

t.test('a returning client gets its previous address; a requested free one is honoured', async (t) => {
  const { leases, subnet } = setup();
  await leases.bind(ipToInt('198.18.0.11'), { mac: 'aa:aa:aa:aa:aa:01', subnet: subnet.cidr.text, expiresAt: now - 1000 }, now - 5000);
  t.equal(intToIp(leases.choose('aa:aa:aa:aa:aa:01', subnet, undefined, undefined, now)!), '198.18.0.11', 'expired but not reused: same address');
  t.equal(intToIp(leases.choose('aa:aa:aa:aa:aa:02', subnet, undefined, ip('198.18.0.13'), now)!), '198.18.0.13', 'requested address');
  t.equal(leases.check(ip('198.18.0.50'), 'aa:aa:aa:aa:aa:02', subnet, undefined, now), 'outside-pool');
  t.equal(leases.check(ip('198.18.1.5'), 'aa:aa:aa:aa:aa:02', subnet, undefined, now), 'wrong-subnet');
});

t.test('a bound lease is not given to another client until it expires', async (t) => {
  const { leases, subnet } = setup();
  await leases.bind(ipToInt('198.18.0.10'), { mac: 'aa:aa:aa:aa:aa:01', subnet: subnet.cidr.text, expiresAt: now + 60_000 }, now);
  t.equal(leases.check(ip('198.18.0.10'), 'aa:aa:aa:aa:aa:02', subnet, undefined, now), 'leased-to-other');
  t.equal(leases.check(ip('198.18.0.10'), 'aa:aa:aa:aa:aa:02', subnet, undefined, now + 61_000), 'remembered-for-other', 'after expiry kept for its owner');
  t.equal(leases.check(ip('198.18.0.10'), 'aa:aa:aa:aa:aa:01', subnet, undefined, now + 61_000), undefined, 'who may have it again');
});

t.test('a declined address is quarantined', async (t) => {
  const { leases, subnet } = setup();
  await leases.decline(ip('198.18.0.10'), { mac: 'aa:aa:aa:aa:aa:01' }, subnet, true, now);
  t.equal(leases.check(ip('198.18.0.10'), 'aa:aa:aa:aa:aa:01', subnet, undefined, now), 'declined', 'even for the client that declined it');
  t.not(leases.choose('aa:aa:aa:aa:aa:01', subnet, undefined, undefined, now), ip('198.18.0.10'));
  t.equal(leases.check(ip('198.18.0.10'), 'aa:aa:aa:aa:aa:01', subnet, undefined, now + 700_000), undefined, 'released from quarantine later');
});

t.test('an exhausted pool reuses the longest-expired lease, then the oldest offer', async (t) => {
  const { leases, subnet } = setup();
  // Pool .10-.13 with .12 reserved: three dynamic addresses.
  for (const [i, a] of ['198.18.0.10', '198.18.0.11', '198.18.0.13'].entries()) {
    await leases.bind(ipToInt(a), { mac: `aa:aa:aa:aa:aa:0${i}`, subnet: subnet.cidr.text, expiresAt: now - 10_000 + i * 1000 }, now - 20_000);
  }
  t.equal(intToIp(leases.choose('bb:bb:bb:bb:bb:01', subnet, undefined, undefined, now)!), '198.18.0.10', 'longest expired first');
  const { leases: l2, subnet: s2 } = setup();
  const offered: number[] = [];
  for (let i = 0; i < 3; i++) {
    const key = `cc:cc:cc:cc:cc:0${i}`;
    offered.push(l2.choose(key, s2, undefined, undefined, now + i)!);
    l2.offer(offered[i]!, key, now + i);
  }
  const stolen = l2.choose('dd:dd:dd:dd:dd:01', s2, undefined, undefined, now + 10);
  t.equal(stolen, offered[0], 'an offer flood does not lock a real client out: the oldest offer is taken');
  t.equal(l2.check(offered[0]!, 'dd:dd:dd:dd:dd:01', s2, undefined, now + 10), undefined, 'and withdrawn from the client it was offered to');
  t.equal(l2.check(offered[1]!, 'dd:dd:dd:dd:dd:01', s2, undefined, now + 10), 'offered-to-other', 'the younger offers stand');
});
