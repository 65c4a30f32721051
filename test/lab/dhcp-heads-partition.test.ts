/**
 * One head of three cut off from the others' etcd (iptables in its
 * namespace, as `lab partition-head` does), with real dhclients on the
 * heads' segment (issue 18). Its member loses the quorum, so it can claim
 * nothing: after the registry's TTL it has given no new address, and a new
 * client whose MAC hashes to it is served by the other two. A client it
 * leased keeps its address. Healed: every head holds the same lease table,
 * no address bound to two MACs, and the healed head serves its clients
 * again, with no operator action.
 */
import t from 'tap';
import type { LeaseRecord } from '../../src/cluster/types.ts';
import { answerOrder } from '../../src/services/dhcp/heads.ts';
import { dhclientOnce, HEAD_NAMES, lastDhclientLease, metricOf, startHeads, waitAllAlive, type HeadProc } from '../helpers/heads.ts';

const config = () => `
subnets: [{ network: 198.18.0.0/24, interface: eth0, pool: 198.18.0.100-198.18.0.150, leaseTime: 1h }]
tftp: { enabled: false }
ntp: { enabled: false }
dns: { enabled: false }
`;

/** The first `n` MACs of 52:54:00:c4:00:xx whose answering head (all three alive) is `head`. */
function macsOf(head: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 1; out.length < n; i++) {
    const mac = `52:54:00:c4:00:${i.toString(16).padStart(2, '0')}`;
    if (answerOrder(mac, HEAD_NAMES)[0] === head) out.push(mac);
  }
  return out;
}

t.test('a head partitioned from etcd gives no new address after the TTL, the others serve its clients; healed: one lease table', async (t) => {
  const [leasedByC, newForC, afterHeal] = macsOf('hc', 3) as [string, string, string];
  const [forA] = macsOf('ha', 1) as [string];
  const h = await startHeads(t, {
    tag: 'hp',
    clients: [{ mac: leasedByC }, { mac: newForC }, { mac: afterHeal }, { mac: forA }, { mac: '52:54:00:c4:01:01', cidr: '198.18.0.50/24' }],
    config,
  });
  const [c0, c1, c2, c3, admin] = h.lab.clients as [typeof h.lab.clients[0], typeof h.lab.clients[0], typeof h.lab.clients[0], typeof h.lab.clients[0], typeof h.lab.clients[0]];
  const hc = h.heads[2]!;
  const others = h.heads.slice(0, 2);
  // A new address starts with an OFFER; a renewal hc may still ACK (for the time left on the lease) makes none.
  const offers = (head: HeadProc) => metricOf(h.api(admin, head, 'GET', '/metrics').body, 'bootherd_dhcp_sent_total', 'type="OFFER"');
  const leasesOf = (head: HeadProc) => JSON.parse(h.api(admin, head, 'GET', '/api/v1/leases').body) as LeaseRecord[];

  await waitAllAlive(h, admin);
  t.equal(dhclientOnce(h, c0.ns, 30).code, 0, 'a client whose MAC hashes to hc gets a lease');
  const first = lastDhclientLease(h, c0.ns);
  t.equal(first.server, hc.address, 'from hc');

  h.partition(hc);
  t.teardown(() => { try { h.partition(hc, true); } catch { /* the lab is gone */ } });
  // The others stop counting hc alive once its registry record's etcd lease runs out (the TTL).
  await waitAllAlive(h, admin, 2, 60_000, others);
  const hcOffersAtTtl = offers(hc);

  t.equal(dhclientOnce(h, c1.ns, 60).code, 0, 'partitioned: a new client whose MAC hashes to hc still gets a lease');
  const taken = lastDhclientLease(h, c1.ns);
  t.not(taken.server, hc.address, `from another head (${taken.server})`);
  t.equal(dhclientOnce(h, c3.ns, 30).code, 0, 'the other heads serve their own clients');
  t.equal(dhclientOnce(h, c0.ns, 60).code, 0, 'the client hc leased renews');
  t.equal(lastDhclientLease(h, c0.ns).ip, first.ip, 'with the same address');
  t.equal(offers(hc), hcOffersAtTtl, 'hc offered nothing after the TTL (its claims cannot commit)');

  h.partition(hc, true);
  await waitAllAlive(h, admin, 3, 90_000);
  // Once hc's watch has caught up, every head holds the same records.
  const table = (head: HeadProc) => leasesOf(head).map((l) => `${l.ip} ${l.mac} ${l.state} ${l.expiresAt}`).sort().join('\n');
  const healEnd = Date.now() + 60_000;
  while (table(hc) !== table(h.heads[0]!) || table(h.heads[1]!) !== table(h.heads[0]!)) {
    if (Date.now() > healEnd) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  t.equal(table(hc), table(h.heads[0]!), 'healed: hc holds the lease table ha holds');
  t.equal(table(h.heads[1]!), table(h.heads[0]!), 'and so does hb');
  const now = Date.now();
  const bound = leasesOf(h.heads[0]!).filter((l) => l.state === 'bound' && l.expiresAt > now);
  t.equal(new Set(bound.map((l) => l.ip)).size, bound.length, 'no address bound twice');
  for (const [mac, ns] of [[leasedByC, c0.ns], [newForC, c1.ns], [forA, c3.ns]] as const) {
    const mine = bound.filter((l) => l.mac === mac);
    t.equal(mine.length, 1, `${mac}: one bound address`);
    t.equal(mine[0]?.ip, lastDhclientLease(h, ns).ip, `${mac}: the one its client holds`);
  }

  const before = offers(hc);
  t.equal(dhclientOnce(h, c2.ns, 60).code, 0, 'healed: a new client whose MAC hashes to hc gets a lease');
  t.equal(lastDhclientLease(h, c2.ns).server, hc.address, 'from hc again, no restart');
  t.ok(offers(hc) > before, 'hc offered it');
  t.ok(h.heads.every((head) => head.proc?.exitCode === null), 'no head restarted');
});
