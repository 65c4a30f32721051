/**
 * Real DHCP clients (ISC dhclient, busybox udhcpc) against a real bootherd,
 * each in its own network namespace on a lab bridge.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startLabServer } from '../helpers/lab-server.ts';

const KNOWN = '52:54:00:00:00:01';
const UNKNOWN = '52:54:00:00:00:99';

const config = (state: string) => `
cluster: { domain: lab.test }
head: { name: head, address: 198.18.0.1 }
state: ${state}
log: { level: debug }
subnets:
  - network: 198.18.0.0/24
    interface: eth0
    router: 198.18.0.1
    pool: 198.18.0.100-198.18.0.150
    leaseTime: 10m
nodes:
  - { name: n001, macs: [${KNOWN}, 52:54:00:00:01:01], ip: 198.18.0.11 }
`;

t.test('dhclient: reservation, pool address, renew and release', async (t) => {
  const s = await startLabServer(t, { tag: 'dc', clients: 2, clientMac: (i) => [KNOWN, UNKNOWN][i]!, config });
  const [known, unknown] = s.lab.clients as [typeof s.lab.clients[0], typeof s.lab.clients[0]];
  const dhclient = (ns: string, ...extra: string[]) => s.lab.exec(ns, 'dhclient', ['-1', '-v', '-lf', path.join(s.dir, `${ns}.leases`), '-pf', path.join(s.dir, `${ns}.pid`), '-sf', '/bin/true', ...extra, 'eth0'], 30_000);

  dhclient(known.ns);
  const k = readFileSync(path.join(s.dir, `${known.ns}.leases`), 'utf8');
  t.match(k, /fixed-address 198\.18\.0\.11;/, 'known MAC gets its reservation');
  t.match(k, /option host-name "n001";/, 'and its node name (option 12)');
  t.match(k, /option domain-name "lab\.test";/, 'and the cluster domain (option 15)');
  t.match(k, /option routers 198\.18\.0\.1;/, 'router (option 3)');
  t.match(k, /option domain-name-servers 198\.18\.0\.1;/, 'DNS server (option 6)');
  t.match(k, /option ntp-servers 198\.18\.0\.1;/, 'NTP server (option 42)');
  t.match(k, /option dhcp-lease-time 600;/, 'subnet lease time (option 51)');
  t.match(k, /option dhcp-server-identifier 198\.18\.0\.1;/, 'server id (option 54)');

  dhclient(unknown.ns);
  const u = readFileSync(path.join(s.dir, `${unknown.ns}.leases`), 'utf8');
  t.match(u, /fixed-address 198\.18\.0\.100;/, 'unknown MAC gets the first pool address');
  t.notMatch(u, /host-name/, 'and no node name');

  // Renew: dhclient with the lease file runs INIT-REBOOT and gets the same address back.
  s.lab.exec(unknown.ns, 'ip', ['addr', 'flush', 'dev', 'eth0']);
  dhclient(unknown.ns);
  const renewed = readFileSync(path.join(s.dir, `${unknown.ns}.leases`), 'utf8');
  t.equal([...renewed.matchAll(/fixed-address 198\.18\.0\.100;/g)].length, 2, 'INIT-REBOOT keeps the address');

  // Release: the address goes back to the pool.
  s.lab.exec(unknown.ns, 'ip', ['addr', 'add', '198.18.0.100/24', 'dev', 'eth0']);
  dhclient(unknown.ns, '-r');
  await new Promise((r) => setTimeout(r, 300));
  const leases = readFileSync(path.join(s.dir, 'state', readdirJournal(s.dir)), 'utf8');
  t.match(leases, /"ip":"198\.18\.0\.100".*"state":"released"/, 'RELEASE is recorded in the store');
});

t.test('udhcpc: reservation and pool address', async (t) => {
  const s = await startLabServer(t, { tag: 'du', clients: 2, clientMac: (i) => [KNOWN, UNKNOWN][i]!, config });
  const run = (ns: string) => s.lab.run(ns, 'udhcpc', ['-i', 'eth0', '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', '/bin/true', '-O', 'ntpsrv'], 30_000).stderr;
  t.match(run(s.lab.clients[0]!.ns), /lease of 198\.18\.0\.11 obtained/, 'udhcpc gets the reservation');
  t.match(run(s.lab.clients[1]!.ns), /lease of 198\.18\.0\.100 obtained/, 'and a pool address for an unknown MAC');
});

function readdirJournal(dir: string): string {
  return readdirSync(path.join(dir, 'state')).find((f) => f.startsWith('journal-'))!;
}

t.test('no answer on an interface the config does not name', async (t) => {
  const s = await startLabServer(t, { tag: 'di', clients: 1, clientMac: () => KNOWN, config });
  const { lab } = s;
  // The head gets a second interface on another segment, with an address, not named in the cluster file.
  lab.addBridge('br1');
  lab.addInterface(lab.head, { bridge: 'br1', iface: 'eth1', mac: '52:54:00:a0:00:02', cidr: '198.18.2.1/24' });
  const stranger = lab.addHost('x0', { bridge: 'br1', mac: KNOWN });
  const r = lab.run(stranger.ns, 'udhcpc', ['-i', 'eth0', '-n', '-q', '-f', '-t', '3', '-T', '1', '-s', '/bin/true'], 30_000);
  t.not(r.code, 0, 'a client on the unnamed interface gets no lease');
  t.match(r.stderr, /no lease, failing/);
  const served = lab.run(lab.clients[0]!.ns, 'udhcpc', ['-i', 'eth0', '-n', '-q', '-f', '-t', '3', '-T', '1', '-s', '/bin/true'], 30_000);
  t.match(served.stderr, /lease of 198\.18\.0\.11 obtained/, 'while the named interface is served');
});
