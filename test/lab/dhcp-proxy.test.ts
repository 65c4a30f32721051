/**
 * bootherd in proxy mode beside a real site DHCP server (dnsmasq), on one lab
 * bridge and through a relay (ISC dhcrelay forwarding to both servers):
 *
 *   c0, c1 (br0) --- site dnsmasq 198.18.0.250, head 198.18.0.1 --- relay 198.18.0.2 | 198.18.1.1 --- rc0, rc1 (br1)
 *
 * - dhclient as an installed OS gets its address from the site server and not
 *   one packet from bootherd (tcpdump in its namespace; bootherd counts the
 *   DISCOVER as proxy-no-vendor-class).
 * - dhclient speaking as UEFI PXE firmware gets the site's address, and
 *   bootherd's proxy OFFER (seen on the wire) carries no address, PXEClient,
 *   option 43 and ipxe.efi.
 * - The PXE boot server on UDP 4011 answers the firmware's REQUEST (the
 *   recorded OVMF DISCOVER's bytes, re-typed as EDK2's REQUEST) from the
 *   client's site address, and bootherd then serves the node's name by DNS.
 * - Requests without option 60, with a foreign vendor class or a truncated
 *   option 43, and junk to 4011, are dropped and counted; bootherd still
 *   answers after.
 * - Relayed: the proxy OFFER goes to the relay (giaddr, port 67), the site's
 *   server gives the address through the same relay.
 * - The same head is the DHCP server of a second segment (198.18.4.0/24 on
 *   its eth1, mode: server) at the same time: dhclient there gets bootherd's
 *   reservation, lease and boot file.
 * - Beside Kea instead of dnsmasq: the same for an OS and a PXE client.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { decode, encode, type DhcpMessage } from '../../protocols/dhcp/codec.ts';
import { MessageType, Opt, readIp, readSubOptions, readText, text, u8 } from '../../protocols/dhcp/options.ts';
import { siteDhcpArgs, startLabSiteDhcp } from '../../src/lab/site-dhcp.ts';
import { ipToInt } from '../../src/net/ipv4.ts';
import { metricOf } from '../helpers/heads.ts';
import { startLabServer } from '../helpers/lab-server.ts';
import { readPcapUdp } from '../helpers/pcap.ts';

const HEAD = '198.18.0.1';
const SITE = '198.18.0.250';
const OS_MAC = '52:54:00:c0:00:01';
/** The MAC of the recorded OVMF DISCOVER (test/vectors/dhcp/recorded.json, uefi-pxe-discover). */
const PXE_MAC = '52:54:00:12:34:03';
const RELAYED_OS = '52:54:00:c1:00:01';
const RELAYED_PXE = '52:54:00:c1:00:02';
const SERVED = '52:54:00:c4:00:01';

const config = (state: string) => `
cluster: { domain: lab.test }
head: { address: ${HEAD} }
state: ${state}
subnets:
  - { network: 198.18.0.0/24, interface: eth0, mode: proxy }
  - { network: 198.18.1.0/24, mode: proxy }
  # bootherd's own addresses on a second segment, at the same time.
  - { network: 198.18.4.0/24, interface: eth1, pool: 198.18.4.100-198.18.4.150 }
nodes:
  - { name: s001, macs: [${SERVED}], ip: 198.18.4.11 }
  - { name: pxe1, macs: [${PXE_MAC}] }
  - { name: rpxe1, macs: [${RELAYED_PXE}] }
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const vectors = (JSON.parse(readFileSync(new URL('../vectors/dhcp/recorded.json', import.meta.url), 'utf8')) as { vectors: Array<{ name: string; hex: string }> }).vectors;
const OVMF_DISCOVER = Buffer.from(vectors.find((v) => v.name === 'uefi-pxe-discover')!.hex, 'hex');

/** The recorded OVMF DISCOVER with other fields and options (deleted when undefined). */
function reshape(fields: Partial<DhcpMessage>, options: Array<[number, Buffer | undefined]> = []): Buffer {
  const m = decode(OVMF_DISCOVER);
  const o = new Map(m.options);
  for (const [code, v] of options) { if (v) o.set(code, v); else o.delete(code); }
  return encode({ ...m, ...fields, options: o }).bytes;
}

/**
 * A UDP peer in a namespace: sends each hex datagram from `port` to `to`, prints every answer's hex.
 * (Plain Node, so it runs as `node -e` inside the namespace.)
 */
const UDP_PEER = `
const dgram = require('node:dgram');
const [to, toPort, port, wait, ...hex] = process.argv.slice(1);
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
s.on('message', (m, r) => console.log(r.address + ' ' + r.port + ' ' + m.toString('hex')));
s.bind(Number(port), () => { for (const h of hex) s.send(Buffer.from(h, 'hex'), Number(toPort), to); setTimeout(() => s.close(), Number(wait)); });
`;

type Server = Awaited<ReturnType<typeof startLabServer>>;

/** ISC dhclient once in `ns` (speaking as `send` says); its lease file. An offer without a mask (a proxy OFFER) is not an address offer. */
function dhclient(t: Test, s: Server, ns: string, name: string, send: string[]): string {
  const conf = path.join(s.dir, `${name}.conf`);
  const leases = path.join(s.dir, `${name}.leases`);
  writeFileSync(conf, [...send, 'require subnet-mask;', 'request subnet-mask, routers, domain-name-servers, domain-name, vendor-class-identifier;'].join('\n') + '\n');
  rmSync(leases, { force: true });
  const r = s.lab.run(ns, 'dhclient', ['-1', '-cf', conf, '-lf', leases, '-pf', path.join(s.dir, `${name}.pid`), '-sf', '/bin/true', 'eth0'], 30_000);
  t.equal(r.code, 0, `${name}: dhclient got a lease`, { stderr: r.stderr });
  s.lab.run(ns, 'dhclient', ['-x', '-pf', path.join(s.dir, `${name}.pid`)], 10_000);
  return readFileSync(leases, 'utf8');
}

/** tcpdump in `ns` from now; the returned function stops it and gives the datagrams. */
function capture(s: Server, ns: string, iface: string, name: string, filter: string): () => Promise<ReturnType<typeof readPcapUdp>> {
  const pcap = path.join(s.dir, `${name}.pcap`);
  const dump = s.lab.spawn(ns, 'tcpdump', ['-i', iface, '-n', '--immediate-mode', '-U', '-s', '0', '-w', pcap, filter]);
  return async () => {
    await sleep(300);
    dump.kill('SIGINT');
    await new Promise((r) => dump.once('exit', r));
    return readPcapUdp(pcap);
  };
}

/** The head's second interface, on a segment (br2) where bootherd is the DHCP server. */
const SERVER_SEGMENT = { before: (lab: Server['lab']) => {
  lab.addBridge('br2');
  lab.addInterface(lab.head, { bridge: 'br2', iface: 'eth1', mac: '52:54:00:a0:01:01', cidr: '198.18.4.1/24' });
} };

const PXE_SEND = ['option pxe-arch code 93 = unsigned integer 16;', 'send pxe-arch 7;', 'send vendor-class-identifier "PXEClient:Arch:00007:UNDI:003016";'];

t.test('proxy mode beside dnsmasq: OS and PXE clients, port 4011, bad input, a relay', async (t) => {
  const s = await startLabServer(t, { tag: 'hp', clients: 2, clientMac: (i) => [OS_MAC, PXE_MAC][i]!, config, ...SERVER_SEGMENT });
  const { lab } = s;
  const siteHost = lab.addHost('site', { mac: '52:54:00:a0:00:fe', cidr: `${SITE}/24` });
  const siteLog = path.join(s.dir, 'site-dhcp.log');
  const siteArgs = siteDhcpArgs({ head: HEAD, nodes: [], log: siteLog, leases: path.join(s.dir, 'site.leases') });
  await startLabSiteDhcp(siteHost.ns, SITE, [...siteArgs, '--dhcp-range=198.18.1.100,198.18.1.199,255.255.255.0,1h'], siteLog, path.join(s.dir, 'site.leases'));
  const metrics = () => lab.run(siteHost.ns, 'curl', ['-s', `http://${HEAD}/metrics`]).stdout;

  await sleep(800);

  await t.test('an installed OS: the site\'s address, not one packet from bootherd', async (t) => {
    const stop = capture(s, lab.clients[0]!.ns, 'eth0', 'os', `udp and src host ${HEAD}`);
    await sleep(800);
    const lease = dhclient(t, s, lab.clients[0]!.ns, 'os', []);
    t.match(lease, /fixed-address 198\.18\.0\.1\d\d;/, 'an address from the site server\'s range');
    t.match(lease, `option dhcp-server-identifier ${SITE};`, 'from the site server');
    t.same((await stop()).length, 0, 'bootherd sent the OS nothing');
    t.ok(metricOf(metrics(), 'bootherd_dhcp_dropped_total', 'reason="proxy-no-vendor-class"') >= 1, 'bootherd counted its DISCOVER as proxy-no-vendor-class');
    t.equal(metricOf(metrics(), 'bootherd_dhcp_sent_total'), 0, 'and sent no reply at all');
  });

  let pxeAddress = '';
  await t.test('a PXE client: the site\'s address, and a proxy OFFER with no address', async (t) => {
    const stop = capture(s, lab.clients[1]!.ns, 'eth0', 'pxe', `udp and src host ${HEAD}`);
    await sleep(800);
    const lease = dhclient(t, s, lab.clients[1]!.ns, 'pxe', PXE_SEND);
    pxeAddress = /fixed-address ([\d.]+);/.exec(lease)?.[1] ?? '';
    t.match(lease, `option dhcp-server-identifier ${SITE};`, 'the address is the site server\'s');
    const offers = (await stop()).map((d) => ({ d, m: decode(d.payload) })).filter((x) => x.m.options.get(Opt.MESSAGE_TYPE)?.[0] === MessageType.OFFER);
    t.ok(offers.length >= 1, `bootherd sent a proxy OFFER (${offers.length})`);
    for (const { d, m } of offers) {
      t.equal(m.yiaddr, 0, 'no address in it');
      t.equal(d.dstPort, 68, 'to the client port');
      t.equal(readText(m.options.get(Opt.VENDOR_CLASS)), 'PXEClient');
      t.same(readSubOptions(m.options.get(Opt.VENDOR_SPECIFIC))?.get(6), Buffer.from([8]), 'option 43: discovery control 8');
      t.equal(readIp(m.options.get(Opt.SERVER_ID)), ipToInt(HEAD));
      t.equal(m.file, 'ipxe.efi');
      t.notOk(m.options.has(Opt.SUBNET_MASK) || m.options.has(Opt.LEASE_TIME), 'no mask, no lease time');
    }
  });

  await t.test('the PXE boot server on port 4011 answers the firmware\'s REQUEST from its site address', async (t) => {
    t.ok(pxeAddress, 'the PXE client has a site address');
    const ns = lab.clients[1]!.ns;
    lab.exec(ns, 'ip', ['addr', 'add', `${pxeAddress}/24`, 'dev', 'eth0']);
    const request = reshape({ ciaddr: ipToInt(pxeAddress) }, [[Opt.MESSAGE_TYPE, u8(MessageType.REQUEST)]]);
    const out = lab.exec(ns, process.execPath, ['-e', UDP_PEER, HEAD, '4011', '4011', '1500', request.toString('hex')]);
    const answers = out.trim().split('\n').filter(Boolean).map((l) => l.split(' '));
    t.equal(answers.length, 1, 'one answer');
    const [from, port, hex] = answers[0]!;
    t.equal(`${from}:${port}`, `${HEAD}:4011`, 'from the boot server port');
    const ack = decode(Buffer.from(hex!, 'hex'));
    t.equal(ack.options.get(Opt.MESSAGE_TYPE)?.[0], MessageType.ACK);
    t.equal(ack.yiaddr, 0, 'no address');
    t.equal(ack.file, 'ipxe.efi', 'the boot file');
    t.equal(readText(ack.options.get(Opt.VENDOR_CLASS)), 'PXEClient');
    const node = JSON.parse(lab.exec(ns, 'curl', ['-s', `http://${HEAD}/api/v1/nodes/pxe1`])) as { ip: string; ipFrom: string };
    // Learned already from its REQUEST to the site's server (option 50); the 4011 exchange confirms it.
    t.same({ ip: node.ip, ipFrom: node.ipFrom }, { ip: pxeAddress, ipFrom: 'dhcp-request' }, 'bootherd knows the node at the site\'s address');
    t.equal(lab.exec(ns, 'dig', ['+short', `@${HEAD}`, 'pxe1.lab.test']).trim(), pxeAddress, 'and serves it by DNS');
    t.equal(lab.exec(ns, 'dig', ['+short', `@${HEAD}`, '-x', pxeAddress]).trim(), 'pxe1.lab.test.', 'with its PTR');
    // The embedded store keeps it: a restarted bootherd still names the node, before it boots again.
    await s.stop();
    await s.start();
    t.equal(lab.exec(ns, 'dig', ['+short', `@${HEAD}`, 'pxe1.lab.test']).trim(), pxeAddress, 'after a restart too');
  });

  await t.test('bad input: dropped and counted, nothing crashes', async (t) => {
    const ns = lab.clients[1]!.ns;
    const before = metrics();
    const bad = [
      reshape({}, [[Opt.VENDOR_CLASS, undefined]]),
      reshape({}, [[Opt.VENDOR_CLASS, text('MSFT 5.0')]]),
      reshape({}, [[Opt.VENDOR_SPECIFIC, Buffer.from([71, 4, 0x80, 0])]]),
    ];
    lab.exec(ns, process.execPath, ['-e', UDP_PEER, HEAD, '67', '6801', '500', ...bad.map((b) => b.toString('hex'))]);
    // To 4011: a datagram cut short, a non-DHCP one, a DISCOVER.
    const junk = [OVMF_DISCOVER.subarray(0, 100), Buffer.from('hello'), reshape({ ciaddr: ipToInt(pxeAddress) })];
    const answered = lab.exec(ns, process.execPath, ['-e', UDP_PEER, HEAD, '4011', '4012', '1000', ...junk.map((b) => b.toString('hex'))]);
    t.equal(answered.trim(), '', 'no answer to junk on 4011');
    const after = metrics();
    const grew = (reason: string) => metricOf(after, 'bootherd_dhcp_dropped_total', `reason="${reason}"`) - metricOf(before, 'bootherd_dhcp_dropped_total', `reason="${reason}"`);
    t.equal(grew('proxy-no-vendor-class'), 1, 'no option 60: counted');
    t.equal(grew('proxy-foreign-vendor-class'), 1, 'a foreign vendor class: counted');
    t.equal(grew('proxy-bad-vendor-options'), 1, 'a truncated option 43: counted');
    t.equal(grew('short') + grew('cookie'), 2, 'the cut and the non-DHCP datagram: counted as malformed');
    t.equal(grew('proxy-not-booting'), 1, 'a DISCOVER to 4011: counted');
    const request = reshape({ ciaddr: ipToInt(pxeAddress) }, [[Opt.MESSAGE_TYPE, u8(MessageType.REQUEST)]]);
    t.match(lab.exec(ns, process.execPath, ['-e', UDP_PEER, HEAD, '4011', '4011', '1500', request.toString('hex')]), /^198\.18\.0\.1 4011 /, 'still answering after');
  });

  await t.test('one head, one server-mode subnet beside the proxy one: bootherd gives its own addresses there', async (t) => {
    const served = lab.addHost('sv0', { bridge: 'br2', mac: SERVED });
    const lease = dhclient(t, s, served.ns, 'served', PXE_SEND);
    t.match(lease, 'fixed-address 198.18.4.11;', 'the reservation on the server-mode subnet');
    t.match(lease, 'option dhcp-server-identifier 198.18.4.1;', 'from bootherd');
    t.match(lease, 'filename "ipxe.efi";', 'with its boot file in the ACK, as in server mode');
    t.match(lease, /option dhcp-lease-time \d+;/, 'and a lease');
  });

  await t.test('relayed: dhcrelay forwards to both servers; the proxy OFFER goes back through it', async (t) => {
    lab.addBridge('br1');
    const relay = lab.addHost('relay', { mac: '52:54:00:0e:00:01', cidr: '198.18.0.2/24' });
    lab.addInterface(relay, { bridge: 'br1', iface: 'eth1', mac: '52:54:00:0e:00:02', cidr: '198.18.1.1/24' });
    const rOs = lab.addHost('rc0', { bridge: 'br1', mac: RELAYED_OS });
    const rPxe = lab.addHost('rc1', { bridge: 'br1', mac: RELAYED_PXE });
    for (const ns of [lab.head.ns, siteHost.ns]) lab.exec(ns, 'ip', ['route', 'add', '198.18.1.0/24', 'via', '198.18.0.2']);
    const stop = capture(s, relay.ns, 'eth0', 'relay', `udp and src host ${HEAD}`);
    lab.spawn(relay.ns, 'dhcrelay', ['-d', '-4', '-id', 'eth1', '-iu', 'eth0', SITE, HEAD]);
    await sleep(1000);
    const sentBefore = metricOf(metrics(), 'bootherd_dhcp_sent_total');
    const os = dhclient(t, s, rOs.ns, 'relayed-os', []);
    t.match(os, /fixed-address 198\.18\.1\.1\d\d;/, 'the OS behind the relay gets the site\'s relayed-range address');
    t.equal(metricOf(metrics(), 'bootherd_dhcp_sent_total'), sentBefore, 'bootherd answered the relayed OS nothing');
    const pxe = dhclient(t, s, rPxe.ns, 'relayed-pxe', PXE_SEND);
    t.match(pxe, `option dhcp-server-identifier ${SITE};`, 'the relayed PXE client\'s address is the site\'s');
    const replies = (await stop()).map((d) => ({ d, m: decode(d.payload) }));
    const offers = replies.filter((x) => x.m.options.get(Opt.MESSAGE_TYPE)?.[0] === MessageType.OFFER);
    t.ok(offers.length >= 1, `bootherd's proxy OFFER crossed the relay link (${offers.length})`);
    for (const { d, m } of offers) {
      t.equal(`${d.dst}:${d.dstPort}`, '198.18.1.1:67', 'to the relay (giaddr), server port');
      t.equal(m.giaddr, ipToInt('198.18.1.1'), 'giaddr kept');
      t.equal(m.yiaddr, 0, 'no address');
      t.equal(m.file, 'ipxe.efi');
    }
  });
});

t.test('proxy mode beside Kea: the OS gets Kea\'s address and nothing from bootherd; PXE gets Kea\'s address and the proxy OFFER', async (t) => {
  const s = await startLabServer(t, { tag: 'hk', clients: 2, clientMac: (i) => [OS_MAC, PXE_MAC][i]!, config, ...SERVER_SEGMENT });
  const { lab } = s;
  const siteHost = lab.addHost('site', { mac: '52:54:00:a0:00:fe', cidr: `${SITE}/24` });
  const conf = path.join(s.dir, 'kea.json');
  writeFileSync(conf, JSON.stringify({
    Dhcp4: {
      'interfaces-config': { interfaces: ['eth0'], 'dhcp-socket-type': 'raw' },
      'lease-database': { type: 'memfile', persist: false },
      'valid-lifetime': 3600,
      subnet4: [{ id: 1, subnet: '198.18.0.0/24', pools: [{ pool: '198.18.0.100 - 198.18.0.199' }],
        'option-data': [{ name: 'domain-name-servers', data: HEAD }, { name: 'domain-name', data: 'lab.test' }] }],
      loggers: [{ name: 'kea-dhcp4', severity: 'INFO', output_options: [{ output: path.join(s.dir, 'kea.log') }] }],
    },
  }));
  lab.spawn(siteHost.ns, 'kea-dhcp4', ['-c', conf], { env: { ...process.env, KEA_PIDFILE_DIR: s.dir, KEA_LOCKFILE_DIR: s.dir } });
  for (let i = 0; i < 100 && !/DHCP4_STARTED|DHCPSRV_CFGMGR_ADD_SUBNET4/.test(readFileOr(path.join(s.dir, 'kea.log'))); i++) await sleep(100);
  await sleep(500);

  const stopOs = capture(s, lab.clients[0]!.ns, 'eth0', 'kea-os', `udp and src host ${HEAD}`);
  await sleep(800);
  const os = dhclient(t, s, lab.clients[0]!.ns, 'kea-os', []);
  t.match(os, `option dhcp-server-identifier ${SITE};`, 'the OS\'s address is Kea\'s');
  t.match(os, /fixed-address 198\.18\.0\.1\d\d;/);
  t.same((await stopOs()).length, 0, 'bootherd sent the OS nothing');

  const stopPxe = capture(s, lab.clients[1]!.ns, 'eth0', 'kea-pxe', `udp and src host ${HEAD}`);
  await sleep(800);
  const pxe = dhclient(t, s, lab.clients[1]!.ns, 'kea-pxe', PXE_SEND);
  t.match(pxe, `option dhcp-server-identifier ${SITE};`, 'the PXE client\'s address is Kea\'s');
  const offers = (await stopPxe()).map((d) => decode(d.payload)).filter((m) => m.options.get(Opt.MESSAGE_TYPE)?.[0] === MessageType.OFFER);
  t.ok(offers.length >= 1, 'bootherd made a proxy OFFER');
  t.ok(offers.every((m) => m.yiaddr === 0 && m.file === 'ipxe.efi' && readText(m.options.get(Opt.VENDOR_CLASS)) === 'PXEClient'), 'with no address, PXEClient and ipxe.efi');
  const address = /fixed-address ([\d.]+);/.exec(pxe)?.[1];
  const node = JSON.parse(lab.exec(siteHost.ns, 'curl', ['-s', `http://${HEAD}/api/v1/nodes/pxe1`])) as { ip: string; ipFrom: string };
  t.same({ ip: node.ip, ipFrom: node.ipFrom }, { ip: address, ipFrom: 'dhcp-request' }, 'bootherd learned the address Kea gave');
});

function readFileOr(file: string): string {
  try { return readFileSync(file, 'utf8'); } catch { return ''; }
}
