/**
 * Three full heads (`bootherd serve`, each with its etcd member) on one
 * segment with the clients, as most clusters are wired: every head hears
 * every broadcast. A DISCOVER is answered by the one head its MAC hashes to
 * and the REQUEST naming that head is ACKed by it alone. Then etcd stops on
 * every head (members SIGSTOPped): a renewal of the known lease is still
 * ACKed, for no longer than the recorded lease has left, and a new client
 * gets no address; etcd back: the new client is served, no restart.
 */
import t from 'tap';
import { dhclientOnce, etcdMemberPids, lastDhclientLease, metricOf, startHeads, waitAllAlive, type HeadProc } from '../helpers/heads.ts';

const LEASE_SECONDS = 3600;
const config = () => `
subnets: [{ network: 198.18.0.0/24, interface: eth0, pool: 198.18.0.100-198.18.0.150, leaseTime: ${LEASE_SECONDS}s }]
tftp: { enabled: false }
ntp: { enabled: false }
`;


t.test('one segment, three heads: one head answers a client; etcd down: renewals only, to the recorded expiry', async (t) => {
  const h = await startHeads(t, { tag: 'hb', clients: [{ mac: '52:54:00:c1:00:01' }, { mac: '52:54:00:c1:00:02' }, { mac: '52:54:00:c1:00:03', cidr: '198.18.0.50/24' }], config });
  const [first, late, admin] = h.lab.clients as [typeof h.lab.clients[0], typeof h.lab.clients[0], typeof h.lab.clients[0]];
  // dhclient runs with -sf /bin/true (the namespace keeps no address): the API is asked from a client with one.
  const metricsOf = (head: HeadProc) => h.api(admin, head, 'GET', '/metrics').body;
  const dhclient = (ns: string, timeout: number) => dhclientOnce(h, ns, timeout);
  const lastLease = (ns: string) => lastDhclientLease(h, ns);

  // Each head must see the other two alive first, or it would count itself the chosen one too.
  await waitAllAlive(h, admin);
  t.equal(dhclient(first.ns, 30).code, 0, 'dhclient gets a lease from the three heads');
  const leased = lastLease(first.ns);
  t.match(leased.ip, /^198\.18\.0\.1[0-4]\d$|^198\.18\.0\.150$/, `a pool address (${leased.ip})`);
  t.equal(leased.seconds, LEASE_SECONDS, 'for the whole lease time');
  const sent = h.heads.map((head) => {
    const m = metricsOf(head);
    return { offers: metricOf(m, 'bootherd_dhcp_sent_total', 'type="OFFER"'), acks: metricOf(m, 'bootherd_dhcp_sent_total', 'type="ACK"'), silent: metricOf(m, 'bootherd_dhcp_dropped_total', 'reason="other-head"') };
  });
  t.comment(`per head: ${JSON.stringify(sent)}`);
  const offering = sent.filter((s) => s.offers > 0).length;
  const acking = sent.filter((s) => s.acks > 0).length;
  t.equal(offering, 1, 'one head offered (the others stayed silent for this MAC)');
  t.equal(acking, 1, 'one head ACKed the REQUEST that named it');
  t.ok(sent.findIndex((s) => s.offers > 0) === sent.findIndex((s) => s.acks > 0), 'the same head');
  t.ok(sent.filter((s) => s.silent > 0).length >= 1, 'the heads that stayed silent counted why (other-head)');

  const members = etcdMemberPids(h);
  t.equal(members.length, 3, 'one etcd member per head');
  for (const pid of members) process.kill(pid, 'SIGSTOP');
  t.teardown(() => { for (const pid of members) { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } } });

  t.equal(dhclient(first.ns, 60).code, 0, 'etcd stopped: the known client renews (INIT-REBOOT from its lease file)');
  const renewed = lastLease(first.ns);
  t.equal(renewed.ip, leased.ip, 'the same address');
  t.ok(renewed.seconds > 0 && renewed.seconds < LEASE_SECONDS, `for the time left on the recorded lease only (${renewed.seconds} s < ${LEASE_SECONDS} s)`);
  t.ok(h.heads.some((head) => metricOf(metricsOf(head), 'bootherd_dhcp_unsaved_renewals_total') > 0), 'counted as an unsaved renewal');
  t.not(dhclient(late.ns, 15).code, 0, 'a new client gets no address while etcd is stopped');

  for (const pid of members) process.kill(pid, 'SIGCONT');
  t.equal(dhclient(late.ns, 60).code, 0, 'etcd back: the new client gets a lease from the same bootherd processes');
  const second = lastLease(late.ns);
  t.not(second.ip, leased.ip, `another address (${second.ip})`);
  t.ok(h.heads.every((head) => head.proc?.exitCode === null), 'no head restarted');
});
