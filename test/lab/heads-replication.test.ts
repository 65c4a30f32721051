/**
 * Three heads, each with its own etcd member started by bootherd (store: {
 * kind: etcd }): a node, a host and an SRV record added through head A's API
 * are answered by heads B and C without a restart — the node's reservation
 * by their DHCP (dhclient, hearing only that head), its A/PTR and the SRV
 * record by their DNS (dig), its iPXE script by their HTTP (curl) — and so is
 * the deletion. /api/v1/status names the field where a head's file differs,
 * and `bootherd check` finds every member.
 */
import t from 'tap';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { BIN } from '../helpers/lab-server.ts';
import { startHeads, type HeadProc } from '../helpers/heads.ts';

const MAC = '52:54:00:00:00:10';
const NODE_IP = '198.18.0.60';

// Every head's file has cluster:, head:, heads:, store: and state: from startHeads.
const config = (self: { name: string; address: string }) => `
log: { level: debug }
subnets:
  - network: 198.18.0.0/24
    interface: eth0
    pool: 198.18.0.100-198.18.0.150
    leaseTime: 10m
tftp: { enabled: false }
ntp: { headPollInterval: 1 }
${self.name === 'hc' ? 'hosts:\n  - { name: only-on-c, ip: 198.18.0.90 }\n' : ''}`;

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

t.test('what head A is told, heads B and C answer; and its deletion', async (t) => {
  const h = await startHeads(t, { tag: 'hr', clients: [{ mac: '52:54:00:c0:00:01', cidr: '198.18.0.50/24' }, { mac: MAC }], config });
  const [a, b, c] = h.heads as [HeadProc, HeadProc, HeadProc];
  const [admin] = h.lab.clients;
  const dig = (head: HeadProc, ...args: string[]) => h.lab.run(admin!.ns, 'dig', [`@${head.address}`, '+short', '+tries=1', '+time=2', ...args]).stdout.trim();
  const script = (head: HeadProc) => h.lab.run(admin!.ns, 'curl', ['-sS', '--max-time', '10', `http://${head.address}/boot/${MAC.replace(/:/g, '-')}.ipxe`]).stdout;
  const dhcp = (head: HeadProc) => {
    h.dhcpOnlyFrom(1, head);
    const lf = path.join(h.dir, `dhclient-${head.name}.leases`);
    rmSync(lf, { force: true });
    const client = h.lab.clients[1]!;
    h.lab.run(client.ns, 'ip', ['addr', 'flush', 'dev', 'eth0']);
    h.lab.run(client.ns, 'dhclient', ['-1', '-v', '-lf', lf, '-pf', path.join(h.dir, `dhclient-${head.name}.pid`), '-sf', '/bin/true', 'eth0'], 90_000);
    try { return readFileSync(lf, 'utf8'); } catch { return ''; }
  };

  t.equal(h.api(admin!, a, 'POST', '/api/v1/nodes', { name: 'n010', macs: [MAC], ip: NODE_IP }).status, 201, 'node added on head A');
  t.equal(h.api(admin!, a, 'POST', '/api/v1/hosts', { name: 'nas', ip: '198.18.0.70' }).status, 201, 'host added on head A');
  t.equal(h.api(admin!, a, 'POST', '/api/v1/srv', { name: '_slurmctld._tcp', target: 'n010', port: 6817 }).status, 201, 'SRV record added on head A');

  for (const head of [b, c]) {
    t.equal(await until(`n010 in ${head.name}'s DNS`, () => dig(head, 'n010.lab.test') || undefined), NODE_IP, `${head.name}: A record of the node`);
    t.equal(dig(head, '-x', NODE_IP), 'n010.lab.test.', `${head.name}: its PTR`);
    t.equal(dig(head, 'nas.lab.test'), '198.18.0.70', `${head.name}: the host`);
    t.equal(dig(head, '_slurmctld._tcp.lab.test', 'SRV'), '0 0 6817 n010.lab.test.', `${head.name}: the SRV record`);
    t.match(script(head), /booting n010 \(198\.18\.0\.60, 52:54:00:00:00:10\)/, `${head.name}: the node's iPXE script over HTTP`);
    const lease = dhcp(head);
    t.match(lease, /fixed-address 198\.18\.0\.60;/, `${head.name}: DHCP gives the node its reservation`);
    t.match(lease, new RegExp(`dhcp-server-identifier ${head.address.replace(/\./g, '\\.')};`), `${head.name}: and it is that head that answered`);
  }

  type Status = { services: { heads: { heads: Array<{ name: string; alive: boolean; configDiffers: string[] }> } } };
  const seen = await until('head A to see B and C alive', () => {
    const status = JSON.parse(h.api(admin!, a, 'GET', '/api/v1/status').body) as Status;
    const byName = Object.fromEntries(status.services.heads.heads.map((x) => [x.name, x]));
    return byName['hb']?.alive && byName['hc']?.alive ? byName : undefined;
  });
  t.pass('head A sees heads B and C alive');
  t.same(seen['hb']?.configDiffers, [], 'B\'s cluster file agrees with A\'s');
  t.same(seen['hc']?.configDiffers, ['hosts'], 'C\'s differs, in hosts, and the status names the field');
  await until('the difference in head A\'s log', () => (/"head":"hc","fields":\["hosts"\].*head hc's cluster file differs from this head's in: hosts/.test(a.logs()) ? true : undefined), 10_000);
  t.pass('and so does the log, naming the head and the field');

  // NTP without upstream: the head etcd elects is the one every head's NTP follows.
  type Ntp = { services: { ntpLeader: { leader?: string }; ntp: { leader?: string; mode?: string } } };
  const ntpViews = await until('every head\'s NTP to follow the head etcd elects', () => {
    const views = h.heads.map((x) => (JSON.parse(h.api(admin!, x, 'GET', '/api/v1/status').body) as Ntp).services);
    const elected = views[0]!.ntpLeader.leader;
    return elected && views.every((v) => v.ntpLeader.leader === elected && v.ntp.leader === elected) ? views : undefined;
  }, 40_000);
  t.ok(ntpViews[0]!.ntpLeader.leader, `etcd elects ${ntpViews[0]!.ntpLeader.leader}, and all three heads' NTP take it as leader`);

  const check = h.lab.run(a.host.ns, process.execPath, [BIN, 'check', '-c', a.configFile], 60_000);
  t.equal(check.code, 0, `bootherd check on head A finds everything: ${check.stdout}${check.stderr}`);
  t.equal(check.stdout.match(/^ok +etcd member at .* answers/gm)?.length, 3, 'every member answers');

  t.equal(h.api(admin!, a, 'DELETE', '/api/v1/srv/_slurmctld._tcp/n010/6817').status, 200, 'SRV record deleted on head A');
  t.equal(h.api(admin!, a, 'DELETE', '/api/v1/hosts/nas').status, 200, 'host deleted on head A');
  t.equal(h.api(admin!, a, 'DELETE', '/api/v1/nodes/n010').status, 200, 'node deleted on head A');
  for (const head of [b, c]) {
    await until(`n010 gone from ${head.name}'s DNS`, () => (dig(head, 'n010.lab.test') === '' ? true : undefined));
    t.equal(dig(head, 'nas.lab.test'), '', `${head.name}: the host is gone`);
    t.equal(dig(head, '_slurmctld._tcp.lab.test', 'SRV'), '', `${head.name}: the SRV record is gone`);
    t.notMatch(script(head), /booting n010/, `${head.name}: the MAC gets no node script any more`);
  }
  const lease = dhcp(b);
  t.match(lease, /fixed-address 198\.18\.0\.1[0-4]\d;/, 'head B gives the MAC a pool address now');
});
