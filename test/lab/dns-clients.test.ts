/**
 * Real DNS clients (dig from BIND 9.18, kdig from Knot 3.2) and a real DHCP
 * client (ISC dhclient) against a real bootherd in a lab network; a real
 * dnsmasq as the upstream resolver it forwards to.
 *
 *   c0  DHCP client (no address until dhclient)       c1 198.18.0.10  inside the cluster subnet
 *   c2  198.18.0.200 on the link, outside the subnet  c3 198.18.0.53  upstream dnsmasq
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { startLabServer } from '../helpers/lab-server.ts';

const HEAD = '198.18.0.1';
const BIG = Array.from({ length: 8 }, (_, i) => `${'x'.repeat(190)}${i}`);

const config = (state: string) => `
cluster: { domain: lab.test }
head: { name: head, address: ${HEAD} }
state: ${state}
log: { level: info }
subnets:
  - network: 198.18.0.0/25
    interface: eth0
    pool: 198.18.0.100-198.18.0.120
    leaseTime: 10m
dns:
  upstreams: [198.18.0.53]
  upstreamTimeout: 1
  slurm: { controller: head, backups: [n002] }
  aliases: [{ name: www, target: n001 }, { name: docs, target: ext.example.org }]
  txt: [{ name: n001, text: rack 1 }, { name: big, text: [${BIG.join(', ')}] }]
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11, ip6: "fd00::11" }
  - { name: n002, macs: [52:54:00:00:00:02], ip: 198.18.0.12 }
srv:
  - { name: _ldap._tcp, target: n001, port: 389 }
`;

t.test('dig, kdig and dhclient against bootherd; dnsmasq upstream', async (t) => {
  const s = await startLabServer(t, {
    tag: 'dn', clients: 4,
    clientCidr: (i) => [undefined, '198.18.0.10/24', '198.18.0.200/24', '198.18.0.53/24'][i],
    config,
  });
  const [dhcp, inside, outside, upstreamHost] = s.lab.clients as [typeof s.lab.clients[0], typeof s.lab.clients[0], typeof s.lab.clients[0], typeof s.lab.clients[0]];
  const upstream = s.lab.spawn(upstreamHost.ns, 'dnsmasq', ['--no-daemon', '--no-resolv', '--no-hosts', '--port=53', '--listen-address=198.18.0.53', '--bind-interfaces',
    '--local-ttl=300', '--local=/example.org/', '--host-record=ext.example.org,192.0.2.7']);
  const dig = (from: string, ...args: string[]) => s.lab.run(from, 'dig', [`@${HEAD}`, '+tries=1', '+time=4', ...args], 20_000).stdout;
  const short = (...args: string[]) => dig(inside.ns, '+short', ...args).trim().split('\n').filter(Boolean);
  const kdig = (...args: string[]) => s.lab.run(inside.ns, 'kdig', [`@${HEAD}`, '+retry=0', '+time=4', ...args], 20_000).stdout;

  t.test('every record kind over UDP and TCP (dig and kdig)', async (t) => {
    for (const tcp of [[], ['+tcp']]) {
      const via = tcp.length ? 'TCP' : 'UDP';
      t.same(short(...tcp, 'n001.lab.test', 'A'), ['198.18.0.11'], `A over ${via}`);
      t.same(short(...tcp, 'n001.lab.test', 'AAAA'), ['fd00::11'], `AAAA over ${via}`);
      t.same(short(...tcp, '-x', '198.18.0.12'), ['n002.lab.test.'], `PTR over ${via}`);
      t.same(short(...tcp, '_slurmctld._tcp.lab.test', 'SRV'), ['10 0 6817 head.lab.test.', '20 0 6817 n002.lab.test.'], `Slurm's SRV over ${via}`);
      t.same(short(...tcp, 'www.lab.test', 'A'), ['n001.lab.test.', '198.18.0.11'], `CNAME chain over ${via}`);
      t.same(short(...tcp, 'n001.lab.test', 'TXT'), ['"rack 1"'], `TXT over ${via}`);
      t.match(short(...tcp, 'lab.test', 'SOA')[0], /^head\.lab\.test\. hostmaster\.lab\.test\. \d+ 3600 600 86400 60$/, `SOA over ${via}`);
      t.same(short(...tcp, 'lab.test', 'NS'), ['head.lab.test.'], `NS over ${via}`);
    }
    const k = kdig('_ldap._tcp.lab.test', 'SRV');
    t.match(k, /status: NOERROR/);
    t.match(k, /_ldap\._tcp\.lab\.test\.\s+60\s+IN\s+SRV\s+0 0 389 n001\.lab\.test\./, 'kdig reads the SRV record');
    t.match(k, /n001\.lab\.test\.\s+60\s+IN\s+A\s+198\.18\.0\.11/, 'and the target address in the additional section');
    t.match(kdig('+tcp', '-x', '198.18.0.11'), /PTR\s+n001\.lab\.test\./, 'kdig over TCP');
    const several = kdig('+tcp', '+keepopen', 'n001.lab.test', 'A', 'n002.lab.test', 'A', '-x', '198.18.0.11');
    t.equal(several.match(/status: NOERROR/g)?.length, 3, 'three queries on one TCP connection (RFC 7766)');
  });

  t.test('names are case-insensitive; NXDOMAIN and NODATA differ', async (t) => {
    t.match(dig(inside.ns, 'N001.LAB.TEST', 'A'), /N001\.LAB\.TEST\.\s+60\s+IN\s+A\s+198\.18\.0\.11/, 'the answer keeps the question\'s case');
    const nx = dig(inside.ns, 'nope.lab.test', 'A');
    t.match(nx, /status: NXDOMAIN/);
    t.match(nx, /flags: qr aa rd ra;/, 'authoritative, recursion available to this client');
    t.match(nx, /AUTHORITY SECTION:\nlab\.test\.\s+60\s+IN\s+SOA/, 'the SOA for negative caching');
    const nodata = dig(inside.ns, 'n002.lab.test', 'AAAA');
    t.match(nodata, /status: NOERROR/);
    t.match(nodata, /ANSWER: 0, AUTHORITY: 1/, 'NODATA: no answer, the SOA');
    t.match(dig(inside.ns, '_tcp.lab.test', 'A'), /status: NOERROR/, 'an empty non-terminal is NODATA, not NXDOMAIN');
    t.match(dig(inside.ns, '-x', '198.18.0.99'), /status: NXDOMAIN[\s\S]*0\.18\.198\.in-addr\.arpa\.\s+60\s+IN\s+SOA/, 'the reverse zone\'s own SOA');
  });

  t.test('EDNS and truncation', async (t) => {
    t.match(dig(inside.ns, '+bufsize=4096', 'n001.lab.test'), /EDNS: version: 0, flags:; udp: 1232/, 'our EDNS size, 1232');
    t.notMatch(dig(inside.ns, '+noedns', 'n001.lab.test'), /OPT PSEUDOSECTION/, 'no OPT for a client without EDNS');
    t.match(dig(inside.ns, '+edns=1', '+noednsneg', 'n001.lab.test'), /status: BADVERS/, 'EDNS version 1: BADVERS');
    const big = dig(inside.ns, 'big.lab.test', 'TXT');
    t.match(big, /Truncated, retrying in TCP mode/, 'too big for UDP: TC set, dig retries over TCP');
    t.equal(big.match(/"x{190}\d"/g)?.length, 8, 'and gets all of it');
    const k = kdig('big.lab.test', 'TXT');
    t.match(k, /ANSWER: 1;/, 'kdig gets the record');
    t.match(k, /From 198\.18\.0\.1@53\(TCP\)/, 'after falling back to TCP itself');
    t.match(dig(inside.ns, '+ignore', 'big.lab.test', 'TXT'), /flags: qr aa tc rd ra;/, 'the truncated UDP reply itself');
  });

  t.test('forwarding to the upstream, its cache, and recursion for the cluster only', async (t) => {
    const first = dig(inside.ns, 'ext.example.org', 'A');
    t.match(first, /ext\.example\.org\.\s+300\s+IN\s+A\s+192\.0\.2\.7/, 'answered by the upstream');
    t.match(first, /flags: qr rd ra;/, 'not authoritative');
    t.same(short('docs.lab.test', 'A'), ['ext.example.org.', '192.0.2.7'], 'an alias to an outside name, chased upstream');
    t.match(dig(inside.ns, 'nope.example.org', 'A'), /status: NXDOMAIN/, 'the upstream\'s NXDOMAIN');
    await new Promise((r) => setTimeout(r, 2100));
    t.match(dig(inside.ns, 'ext.example.org', 'A'), /ext\.example\.org\.\s+29[0-8]\s+IN\s+A\s+192\.0\.2\.7/, 'from the cache, its TTL aged');

    const refused = dig(outside.ns, 'ext.example.org', 'A');
    t.match(refused, /status: REFUSED/, 'a client outside the cluster\'s subnets may not recurse');
    t.match(dig(outside.ns, '+short', 'n001.lab.test', 'A'), /198\.18\.0\.11/, 'but gets the cluster\'s own names');
    t.match(dig(outside.ns, 'n001.lab.test', 'A'), /flags: qr aa rd;/, 'without RA');

    upstream.kill('SIGTERM');
    await new Promise((r) => upstream.once('exit', r));
    t.match(dig(inside.ns, 'ext.example.org', 'A'), /192\.0\.2\.7/, 'the upstream is gone: the cache still answers');
    t.match(dig(inside.ns, 'other.example.org', 'A'), /status: SERVFAIL/, 'and what it does not hold is SERVFAIL');
  });

  t.test('a DHCP client\'s name resolves while its lease lives', async (t) => {
    const lf = path.join(s.dir, 'dhcp.leases');
    const cf = path.join(s.dir, 'dhclient.conf');
    writeFileSync(cf, 'send host-name "myhost";\n');
    const dhclient = (...extra: string[]) => s.lab.exec(dhcp.ns, 'dhclient', ['-1', '-cf', cf, '-lf', lf, '-pf', path.join(s.dir, 'dhcp.pid'), '-sf', '/bin/true', ...extra, 'eth0'], 30_000);
    t.match(dig(inside.ns, 'myhost.lab.test', 'A'), /status: NXDOMAIN/, 'unknown before the lease');
    dhclient();
    t.same(short('myhost.lab.test', 'A'), ['198.18.0.100'], 'the name dhclient sent (option 12) resolves');
    t.same(short('-x', '198.18.0.100'), ['myhost.lab.test.'], 'and its address back');
    s.lab.exec(dhcp.ns, 'ip', ['addr', 'add', '198.18.0.100/24', 'dev', 'eth0']);
    dhclient('-r');
    let gone = '';
    for (let i = 0; i < 20 && !/NXDOMAIN/.test(gone); i++) {
      await new Promise((r) => setTimeout(r, 100));
      gone = dig(inside.ns, 'myhost.lab.test', 'A');
    }
    t.match(gone, /status: NXDOMAIN/, 'released: the name is gone');
  });

  t.test('the server is still healthy', async (t) => {
    t.same(short('n001.lab.test'), ['198.18.0.11']);
    t.notMatch(s.logs(), /"level":(50|60)/, 'no errors logged');
  });
});
