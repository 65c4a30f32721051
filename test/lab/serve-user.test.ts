/**
 * `bootherd serve --user nobody` started as root: the server process runs as
 * nobody with exactly CAP_NET_BIND_SERVICE and CAP_NET_ADMIN (effective,
 * ambient and bounding; nothing else), its root supervisor only waits, and
 * real clients still get answers on the ports below 1024: dhclient (DHCP on
 * 67, socket bound to eth0 by SO_BINDTODEVICE without CAP_NET_RAW), tftp-hpa
 * (69), dig (53), ntpdig (123) and curl (HTTP on 80). The state directory it
 * was given as root's is handed over to nobody.
 */
import t from 'tap';
import { chmodSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { startLabServer } from '../helpers/lab-server.ts';

const HEAD = '198.18.0.1';
const NODE_MAC = '52:54:00:00:00:01';
// CAP_NET_BIND_SERVICE (10) and CAP_NET_ADMIN (12), as /proc/<pid>/status prints capability sets.
const CAPS = '0000000000001400';

const config = (state: string) => `
cluster: { domain: lab.test }
head: { name: head, address: ${HEAD} }
state: ${state}
log: { level: info }
subnets:
  - { network: 198.18.0.0/24, interface: eth0, pool: 198.18.0.100-198.18.0.150, leaseTime: 10m }
# No upstream in the lab: the head serves its own clock at this stratum (else 16, which clients drop).
ntp: { localStratum: 10 }
nodes:
  - { name: n001, macs: [${NODE_MAC}], ip: 198.18.0.11 }
`;

function status(pid: number): Record<string, string> {
  return Object.fromEntries(readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter(Boolean).map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i), l.slice(i + 1).trim()];
  }));
}

t.test('serve --user nobody: its uid and capabilities, and real clients answered', async (t) => {
  const s = await startLabServer(t, {
    tag: 'bhiu', clients: 2, clientMac: (i) => (i === 0 ? '52:54:00:00:00:99' : NODE_MAC), clientCidr: (i) => (i === 0 ? '198.18.0.50/24' : undefined),
    config, serveArgs: ['--user', 'nobody'],
    // The test's directory is root's 0700 temp dir: nobody must be able to read the cluster file in it.
    before: (_lab, dir) => chmodSync(dir, 0o755),
  });
  const supervisor = s.proc.pid!;
  const children = readFileSync(`/proc/${supervisor}/task/${supervisor}/children`, 'utf8').trim().split(/\s+/).map(Number);
  t.equal(children.length, 1, 'the supervisor has one child, the server');
  const server = status(children[0]!);
  t.match(server.Uid, /^65534\s+65534\s+65534\s+65534$/, 'the server runs as nobody (real, effective, saved, fs uid)');
  t.match(server.Gid, /^65534\s+65534\s+65534\s+65534$/, 'and its group');
  t.equal(server.CapEff, CAPS, 'effective: net_bind_service and net_admin only');
  t.equal(server.CapPrm, CAPS, 'permitted: the same');
  t.equal(server.CapBnd, CAPS, 'bounding set: no other capability can ever come back');
  t.equal(server.CapAmb, CAPS, 'ambient: what the etcd member it may start inherits');
  t.equal(server.NoNewPrivs, '0', '(setuid programs are not run by it; the bounding set caps them anyway)');
  t.match(status(supervisor).Uid, /^0\s/, 'the supervisor stays root, to run the iSCSI tools only');
  t.equal(statSync(path.join(s.dir, 'state')).uid, 65534, 'the state directory is handed over to nobody');

  const [inside, node] = s.lab.clients as [typeof s.lab.clients[0], typeof s.lab.clients[0]];
  const lease = s.lab.run(node.ns, 'dhclient', ['-1', '-v', '-lf', path.join(s.dir, 'n.leases'), '-pf', path.join(s.dir, 'n.pid'), '-sf', '/bin/true', 'eth0'], 30_000);
  t.match(lease.stdout + lease.stderr, /bound to 198\.18\.0\.11/, 'DHCP (67, bound to eth0): dhclient gets n001\'s reservation');
  const tftp = s.lab.run(inside.ns, 'tftp', ['-m', 'binary', HEAD, '-c', 'get', 'undionly.kpxe', path.join(s.dir, 'undionly.kpxe')], 30_000);
  t.equal(tftp.code, 0, 'TFTP (69): tftp-hpa fetches undionly.kpxe');
  t.ok(statSync(path.join(s.dir, 'undionly.kpxe')).size > 60_000, 'all of it');
  t.equal(s.lab.run(inside.ns, 'dig', [`@${HEAD}`, '+short', '+tries=1', '+time=4', 'n001.lab.test'], 20_000).stdout.trim(), '198.18.0.11', 'DNS (53): dig resolves n001');
  const ntp = s.lab.run(inside.ns, 'ntpdig', ['-t', '4', HEAD], 20_000);
  t.equal(ntp.code, 0, `NTP (123): ntpdig gets the time (${(ntp.stdout + ntp.stderr).trim()})`);
  const http = s.lab.run(inside.ns, 'curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://${HEAD}/boot/${NODE_MAC.replaceAll(':', '-')}.ipxe`], 20_000);
  t.equal(http.stdout, '200', 'HTTP (80): curl gets n001\'s iPXE script');
});
