/**
 * dhcp.maxClockSkew: three heads, one of them (hc) run under libfaketime
 * with its clock 30 s ahead. The heads measure each other's clocks over
 * /api/v1/clock; hc finds itself off from both others and serves no DHCP,
 * counting every request it drops (clock-skew), while ha and hb (each off
 * from one head of two) keep serving. The client's MAC is one that hashes to
 * hc, so without the refusal hc would be the head that answers it.
 */
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { answerOrder } from '../../src/services/dhcp/heads.ts';
import { HEAD_NAMES, metricOf, startHeads, type HeadProc } from '../helpers/heads.ts';

const config = () => `
subnets: [{ network: 198.18.0.0/24, interface: eth0, pool: 198.18.0.100-198.18.0.150, leaseTime: 1h }]
dhcp: { maxClockSkew: 2s }
tftp: { enabled: false }
ntp: { enabled: false }
`;

/** A MAC whose first head by the answering hash is hc. */
function macOfHc(): string {
  for (let i = 0; i < 256; i++) {
    const mac = `52:54:00:c2:00:${i.toString(16).padStart(2, '0')}`;
    if (answerOrder(mac, HEAD_NAMES)[0] === 'hc') return mac;
  }
  throw new Error('no MAC hashes to hc');
}


t.test('a head whose clock is 30 s off serves no DHCP; the other two do', async (t) => {
  const mac = macOfHc();
  const h = await startHeads(t, {
    tag: 'hk', config, clients: [{ mac }, { mac: '52:54:00:c2:01:01', cidr: '198.18.0.50/24' }],
    wrap: (self) => (self.name === 'hc' ? ['faketime', '-f', '+30s'] : []),
  });
  const [client, admin] = h.lab.clients as [typeof h.lab.clients[0], typeof h.lab.clients[0]];
  const [ha, , hc] = h.heads as [HeadProc, HeadProc, HeadProc];
  const status = (head: HeadProc) => JSON.parse(h.api(admin, head, 'GET', '/api/v1/status').body) as { services: { heads?: { heads: { name: string; alive: boolean; clockOffsetMs?: number }[] } } };
  const end = Date.now() + 30_000;
  const measured = () => h.heads.every((head) => (status(head).services.heads?.heads ?? []).filter((x) => x.clockOffsetMs !== undefined).length === 2);
  while (!measured()) { if (Date.now() > end) throw new Error('the heads did not measure each other\'s clocks'); await new Promise((r) => setTimeout(r, 300)); }
  const offsetOf = (from: HeadProc, name: string) => status(from).services.heads!.heads.find((x) => x.name === name)!.clockOffsetMs!;
  t.ok(Math.abs(offsetOf(ha, 'hc') - 30_000) < 1000, `ha measures hc ~30 s ahead (${offsetOf(ha, 'hc')} ms)`);
  t.ok(Math.abs(offsetOf(ha, 'hb')) < 1000, `and hb in step (${offsetOf(ha, 'hb')} ms)`);
  // The judgement follows the measurements of one poll, which the status can show before all of them are in.
  const stopped = /DHCP stopped on this head: this head's clock differs by more than 2 s \(dhcp\.maxClockSkew\)/;
  for (let i = 0; i < 100 && !stopped.test(hc.logs()); i++) await new Promise((r) => setTimeout(r, 200));
  t.match(hc.logs(), stopped, 'hc logs why it stopped serving DHCP');

  const cf = path.join(h.dir, 'dhclient.conf');
  writeFileSync(cf, 'timeout 60;\nretry 1;\n');
  const lf = path.join(h.dir, 'client.leases');
  const got = h.lab.run(client.ns, 'dhclient', ['-1', '-v', '-cf', cf, '-lf', lf, '-pf', path.join(h.dir, 'client.pid'), '-sf', '/bin/true', 'eth0'], 90_000);
  t.equal(got.code, 0, 'the client gets a lease from the heads whose clocks agree');
  t.match(readFileSync(lf, 'utf8'), /fixed-address 198\.18\.0\.1\d\d;/);
  const m = h.api(admin, hc, 'GET', '/metrics').body;
  t.equal(metricOf(m, 'bootherd_dhcp_sent_total', 'type="OFFER"') + metricOf(m, 'bootherd_dhcp_sent_total', 'type="ACK"'), 0, 'hc, the MAC\'s first head, sent nothing');
  t.ok(metricOf(m, 'bootherd_dhcp_dropped_total', 'reason="clock-skew"') > 0, 'and counted what it dropped (clock-skew)');
});
