/**
 * proxyDHCP through the real handler chain (no sockets): recorded firmware
 * DISCOVERs (SeaBIOS's iPXE ROM, OVMF's own PXE client) on a `mode: proxy`
 * subnet get a proxy OFFER with no address; the REQUEST to port 4011 gets the
 * boot file and teaches the model the node's address; a server-mode subnet on
 * the same head is served as before; non-booting and malformed requests are
 * dropped and counted; `bootherd check` refuses a pool or a reservation on a
 * proxy subnet; `explain --proxy` shows both steps.
 */
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { decode, encode, type DhcpMessage } from '../../protocols/dhcp/codec.ts';
import { ipList, MessageType, Opt, readIp, readSubOptions, readText, readU8, text, u16, u8 } from '../../protocols/dhcp/options.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { intToIp, ipToInt } from '../../src/net/ipv4.ts';
import { explainDiscover } from '../../src/services/dhcp/explain.ts';
import { buildReply, replyDestination } from '../../src/services/dhcp/reply.ts';
import { DhcpService } from '../../src/services/dhcp/service.ts';
import { nodeView } from '../../src/services/http/views.ts';
import { MemoryStore } from '../../src/store/memory.ts';

interface Vector { name: string; hex: string }
const { vectors } = JSON.parse(readFileSync(new URL('../vectors/dhcp/recorded.json', import.meta.url), 'utf8')) as { vectors: Vector[] };
const vector = (name: string) => Buffer.from(vectors.find((v) => v.name === name)!.hex, 'hex');

const CLUSTER = `
head: { address: 198.18.0.1 }
cluster: { domain: lab.test }
subnets:
  - { network: 198.18.0.0/24, interface: eth0, pool: 198.18.0.100-198.18.0.110 }
  - { network: 198.18.2.0/24, interface: eth1, mode: proxy }
  - { network: 198.18.3.0/24, mode: proxy }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11 }
  - { name: p001, macs: [52:54:00:12:34:02] }
  - { name: p002, macs: [52:54:00:12:34:03] }
`;
const config = parseConfig(CLUSTER, '<test>');
const HEAD = ipToInt('198.18.0.1');
const now = 1_700_000_000_000;

function setup() {
  const store = new MemoryStore();
  const metrics = new Metrics();
  const model = new ClusterModel(config, store);
  const dhcp = new DhcpService({ config, model, store, log: silentLogger, metrics, httpBase: 'http://198.18.0.1' });
  return { store, model, dhcp, metrics };
}

/** Runs one datagram; returns the reply as the client would decode it, and where it goes. */
function exchange(dhcp: DhcpService, bytes: Buffer, iface: string | undefined, bootServer?: { address: number; port: number }) {
  const ctx = dhcp.handle(bytes, iface, now, true, bootServer);
  if (!ctx || ctx.replyType === undefined) return { ctx, reply: undefined, to: undefined };
  const built = buildReply(ctx).bytes;
  for (const f of ctx.after) f();
  return { ctx, reply: decode(built), bytes: built, to: replyDestination(ctx, 67, 68) };
}

/** `msg` changed: a recorded DISCOVER re-encoded with other fields or options. */
function reshape(bytes: Buffer, fields: Partial<DhcpMessage>, options: Array<[number, Buffer | undefined]> = []): Buffer {
  const m = decode(bytes);
  const o = new Map(m.options);
  for (const [code, v] of options) { if (v) o.set(code, v); else o.delete(code); }
  return encode({ ...m, ...fields, options: o }).bytes;
}

const type = (m: DhcpMessage | undefined) => readU8(m?.options.get(Opt.MESSAGE_TYPE));
const ADDRESS_OPTIONS = [Opt.SUBNET_MASK, Opt.ROUTER, Opt.LEASE_TIME, Opt.RENEWAL_TIME, Opt.REBINDING_TIME, Opt.DNS_SERVERS, Opt.BROADCAST];

function proxyReplyShape(t: Test, reply: DhcpMessage, what: string): void {
  t.equal(reply.yiaddr, 0, `${what}: no address (yiaddr 0)`);
  t.equal(readText(reply.options.get(Opt.VENDOR_CLASS)), 'PXEClient', `${what}: vendor class PXEClient`);
  t.equal(readIp(reply.options.get(Opt.SERVER_ID)), HEAD, `${what}: server id is the head`);
  const pxe = readSubOptions(reply.options.get(Opt.VENDOR_SPECIFIC));
  t.same(pxe?.get(6), Buffer.from([8]), `${what}: option 43 discovery control 8 (boot from the file, no boot server discovery)`);
  t.same(ADDRESS_OPTIONS.filter((c) => reply.options.has(c)), [], `${what}: no lease, mask, router or DNS options (the site's server's)`);
}

t.test('SeaBIOS iPXE ROM on a proxy subnet: proxy OFFER with its script, then the 4011 ACK teaches its address', async (t) => {
  const { dhcp, model, store } = setup();
  const discover = vector('ipxe-bios-discover');
  const offer = exchange(dhcp, discover, 'eth1');
  t.equal(type(offer.reply), MessageType.OFFER);
  proxyReplyShape(t, offer.reply!, 'OFFER');
  t.equal(offer.reply!.file, 'http://198.18.0.1/boot/52-54-00-12-34-02.ipxe', 'the node\'s iPXE script, by the same boot decision');
  t.same(offer.to, { address: 0xffffffff, port: 68 }, 'broadcast to the client port');
  t.equal(model.nodeByName('p001')!.ip, undefined, 'no address known yet');

  // iPXE's ProxyDHCPREQUEST: unicast to the proxy's port 4011 from the address the site's server gave.
  const client = ipToInt('198.18.2.57');
  const request = reshape(discover, { ciaddr: client }, [[Opt.MESSAGE_TYPE, u8(MessageType.REQUEST)], [Opt.SERVER_ID, ipList([HEAD])]]);
  const ack = exchange(dhcp, request, undefined, { address: client, port: 68 });
  t.equal(type(ack.reply), MessageType.ACK);
  proxyReplyShape(t, ack.reply!, '4011 ACK');
  t.equal(ack.reply!.file, 'http://198.18.0.1/boot/52-54-00-12-34-02.ipxe');
  t.same(ack.to, { address: client, port: 68 }, 'answered where the request came from');
  const node = model.nodeByName('p001')!;
  t.equal(node.ip, '198.18.2.57', 'the model shows the address the site\'s server gave');
  t.equal(node.learned?.from, 'pxe-request');
  t.equal(model.nodeByIp(client)?.name, 'p001', 'found by address (TFTP, HTTP)');
  const view = nodeView(store, node);
  t.equal(view.ip, '198.18.2.57');
  t.equal(view.ipFrom, 'pxe-request', 'the API says where the address came from');
});

t.test('OVMF\'s own PXE client: proxy OFFER with ipxe.efi by TFTP; its 4011 REQUEST is answered', async (t) => {
  const { dhcp, model } = setup();
  const discover = vector('uefi-pxe-discover');
  const offer = exchange(dhcp, discover, 'eth1');
  t.equal(type(offer.reply), MessageType.OFFER);
  proxyReplyShape(t, offer.reply!, 'OFFER');
  t.equal(offer.reply!.file, 'ipxe.efi');
  t.equal(offer.reply!.siaddr, HEAD, 'next-server: the head');
  t.equal(readText(offer.reply!.options.get(Opt.BOOTFILE)), 'ipxe.efi');
  // EDK2 (PxeBcDhcp4Discover) sends a REQUEST with ciaddr set to port 4011, from port 4011.
  const client = ipToInt('198.18.2.58');
  const request = reshape(discover, { ciaddr: client }, [[Opt.MESSAGE_TYPE, u8(MessageType.REQUEST)]]);
  const ack = exchange(dhcp, request, undefined, { address: client, port: 4011 });
  t.equal(type(ack.reply), MessageType.ACK);
  proxyReplyShape(t, ack.reply!, '4011 ACK');
  t.equal(ack.reply!.file, 'ipxe.efi');
  t.same(ack.to, { address: client, port: 4011 });
  t.equal(model.nodeByName('p002')!.ip, '198.18.2.58');
});

t.test('one head: a server-mode subnet and a proxy subnet at once', async (t) => {
  const { dhcp } = setup();
  const server = exchange(dhcp, reshape(vector('ipxe-bios-discover'), { chaddr: Buffer.from('525400000001' + '00'.repeat(10), 'hex') }), 'eth0');
  t.equal(type(server.reply), MessageType.OFFER);
  t.equal(server.reply!.yiaddr, ipToInt('198.18.0.11'), 'server mode: the reservation');
  t.ok(server.reply!.options.has(Opt.LEASE_TIME), 'server mode: a lease');
  const pool = exchange(dhcp, vector('dhclient-discover'), 'eth0');
  t.equal(pool.reply!.yiaddr, ipToInt('198.18.0.100'), 'server mode: a pool address for an OS');
  t.equal(exchange(dhcp, vector('dhclient-discover'), 'eth1').reply, undefined, 'proxy mode: nothing for the same OS');
});

t.test('relayed proxy subnet: the proxy OFFER goes back through the relay', async (t) => {
  const { dhcp } = setup();
  const relay = ipToInt('198.18.3.1');
  const r = exchange(dhcp, reshape(vector('uefi-pxe-discover'), { giaddr: relay, hops: 1 }), 'eth0');
  t.equal(type(r.reply), MessageType.OFFER);
  proxyReplyShape(t, r.reply!, 'relayed OFFER');
  t.equal(r.reply!.giaddr, relay);
  t.same(r.to, { address: relay, port: 67 }, 'to the relay\'s server port');
  // The 4011 REQUEST crosses the router itself: the client's address selects the subnet.
  const client = ipToInt('198.18.3.77');
  const ack = exchange(dhcp, reshape(vector('uefi-pxe-discover'), { ciaddr: client }, [[Opt.MESSAGE_TYPE, u8(MessageType.REQUEST)]]), undefined, { address: client, port: 4011 });
  t.equal(type(ack.reply), MessageType.ACK);
  t.match(ack.ctx!.trace!.join('\n'), /subnet 198\.18\.3\.0\/24/);
});

t.test('bad and foreign input on a proxy subnet: dropped and counted, nothing thrown', async (t) => {
  const { dhcp, metrics, model } = setup();
  const dropped = (reason: string) => metrics.value('bootherd_dhcp_dropped_total', { reason });
  const pxe = vector('uefi-pxe-discover');
  const cases: Array<[string, Buffer, string, { address: number; port: number }?]> = [
    ['no option 60 (an OS)', vector('dhclient-discover'), 'proxy-no-vendor-class'],
    ['no option 60 (PXE DISCOVER without it)', reshape(pxe, {}, [[Opt.VENDOR_CLASS, undefined]]), 'proxy-no-vendor-class'],
    ['foreign vendor class', reshape(pxe, {}, [[Opt.VENDOR_CLASS, text('MSFT 5.0')]]), 'proxy-foreign-vendor-class'],
    ['truncated option 43', reshape(pxe, {}, [[Opt.VENDOR_SPECIFIC, Buffer.from([71, 4, 0x80, 0])]]), 'proxy-bad-vendor-options'],
    ['REQUEST to the site\'s server', reshape(pxe, {}, [[Opt.MESSAGE_TYPE, u8(MessageType.REQUEST)], [Opt.SERVER_ID, ipList([ipToInt('198.18.2.254')])], [Opt.REQUESTED_IP, ipList([ipToInt('198.18.2.58')])]]), 'other-server'],
    ['REQUEST naming us on port 67 (the proxy OFFER taken for an address)', reshape(pxe, {}, [[Opt.MESSAGE_TYPE, u8(MessageType.REQUEST)], [Opt.SERVER_ID, ipList([HEAD])], [Opt.REQUESTED_IP, ipList([0])]]), 'proxy-not-booting'],
    ['RELEASE', reshape(pxe, { ciaddr: ipToInt('198.18.2.58') }, [[Opt.MESSAGE_TYPE, u8(MessageType.RELEASE)]]), 'proxy-not-booting'],
    ['DISCOVER to port 4011', reshape(pxe, { ciaddr: ipToInt('198.18.2.58') }), 'proxy-not-booting', { address: ipToInt('198.18.2.58'), port: 4011 }],
    ['4011 REQUEST from a server-mode subnet', reshape(pxe, { ciaddr: ipToInt('198.18.0.50') }, [[Opt.MESSAGE_TYPE, u8(MessageType.REQUEST)]]), 'proxy-not-proxy-subnet', { address: ipToInt('198.18.0.50'), port: 4011 }],
    ['unsupported architecture', reshape(pxe, {}, [[Opt.CLIENT_ARCH, u16(99)]]), 'proxy-not-booting'],
  ];
  for (const [what, bytes, reason, from] of cases) {
    const before = dropped(reason) ?? 0;
    const r = exchange(dhcp, bytes, from ? undefined : 'eth1', from);
    t.equal(r.reply, undefined, `${what}: no reply`);
    t.equal(dropped(reason), before + 1, `${what}: counted as ${reason}`);
  }
  // Truncated at every length: whatever decodes runs the chain without throwing, and nothing is learned.
  const request = reshape(pxe, { ciaddr: ipToInt('198.18.2.99') }, [[Opt.MESSAGE_TYPE, u8(MessageType.REQUEST)]]);
  for (let n = 0; n < request.length; n++) {
    dhcp.handle(request.subarray(0, n), undefined, now, false, { address: ipToInt('198.18.2.99'), port: 4011 });
  }
  t.equal(model.nodeByName('p002')!.ip, undefined, 'no address learned from a dry run (after() was not run)');
});

t.test('the firmware\'s REQUEST to the site\'s server teaches its address before anything else', async (t) => {
  const { dhcp, model } = setup();
  const site = ipToInt('198.18.2.254');
  const request = reshape(vector('uefi-pxe-discover'), {}, [[Opt.MESSAGE_TYPE, u8(MessageType.REQUEST)], [Opt.SERVER_ID, ipList([site])], [Opt.REQUESTED_IP, ipList([ipToInt('198.18.2.61')])]]);
  const ctx = dhcp.handle(request, 'eth1', now, true);
  t.equal(ctx?.replyType, undefined, 'not answered: the site\'s server ACKs it');
  for (const f of ctx!.after) f();
  t.equal(model.nodeByName('p002')!.ip, '198.18.2.61');
  t.equal(model.nodeByName('p002')!.learned?.from, 'dhcp-request');
});

t.test('learned addresses: a node seen at a new address moves; another node seen there loses it; reservations stay', async (t) => {
  const { model } = setup();
  const p1 = model.nodeByName('p001')!;
  const p2 = model.nodeByName('p002')!;
  model.learnAddress(p1, '198.18.2.10', 'pxe-request', now);
  model.learnAddress(p2, '198.18.2.10', 'pxe-request', now + 1);
  t.equal(model.nodeByName('p001')!.ip, undefined, 'p001 lost the address the site\'s server gave to p002');
  t.equal(model.nodeByName('p002')!.ip, '198.18.2.10');
  model.learnAddress(model.nodeByName('p002')!, '198.18.0.50', 'booted', now);
  t.equal(model.nodeByName('p002')!.ip, '198.18.2.10', 'an address outside every proxy subnet is not learned');
  model.learnAddress(model.nodeByName('n001')!, '198.18.2.11', 'pxe-request', now);
  t.equal(model.nodeByName('n001')!.ip, '198.18.0.11', 'a reservation is never replaced');
});

t.test('bootherd check: a proxy subnet refuses a pool, a lease time and reservations, naming the field', async (t) => {
  const problems = (yaml: string) => { try { parseConfig(yaml, 'cluster.yaml'); return ''; } catch (e) { if (e instanceof ConfigError) return e.message; throw e; } };
  const base = (subnet: string, node: string) => `head: { address: 198.18.0.1 }\nsubnets:\n  - { network: 198.18.0.0/24, interface: eth0 }\n  - ${subnet}\nnodes:\n  - ${node}\n`;
  t.match(problems(base('{ network: 198.18.2.0/24, mode: proxy, pool: 198.18.2.10-198.18.2.20 }', '{ name: a, macs: [52:54:00:00:00:09] }')),
    /subnets\[1\]\.pool.*mode: proxy.*site's DHCP server gives its addresses.*remove pool/s);
  t.match(problems(base('{ network: 198.18.2.0/24, mode: proxy, leaseTime: 1h }', '{ name: a, macs: [52:54:00:00:00:09] }')), /subnets\[1\]\.leaseTime/);
  t.match(problems(base('{ network: 198.18.2.0/24, mode: proxy }', '{ name: a, macs: [52:54:00:00:00:09], ip: 198.18.2.5 }')),
    /nodes\[0\]\.ip.*mode: proxy.*never hand out this reservation.*remove ip/s);
  t.match(problems(base('{ network: 198.18.2.0/24 }', '{ name: a, macs: [52:54:00:00:00:09] }')), /nodes\[0\]\.ip.*missing/s);
  t.match(problems(base('{ network: 198.18.2.0/24, mode: bridge }', '{ name: a, macs: [52:54:00:00:00:09], ip: 198.18.0.9 }')), /subnets\[1\]\.mode.*server.*proxy/s);
  t.equal(problems(base('{ network: 198.18.2.0/24, mode: proxy }', '{ name: a, macs: [52:54:00:00:00:09] }')), '', 'a proxy subnet with nodes known by MAC only is valid');
});

t.test('API: a node without ip is accepted only where a proxy subnet exists; a reservation on it is refused', async (t) => {
  const { model } = setup();
  const added = await model.addNode({ name: 'p003', macs: ['52:54:00:00:00:33'] });
  t.equal(added.ip, undefined);
  await t.rejects(model.addNode({ name: 'p004', macs: ['52:54:00:00:00:34'], ip: '198.18.2.40' }), /ip: .*mode: proxy/);
  const serverOnly = parseConfig('head: { address: 198.18.0.1 }\nsubnets:\n  - { network: 198.18.0.0/24, interface: eth0 }\n', '<test>');
  const m2 = new ClusterModel(serverOnly, new MemoryStore());
  await t.rejects(m2.addNode({ name: 'x', macs: ['52:54:00:00:00:35'] }), /ip: missing/);
});

t.test('explain: a proxy subnet shows the proxy OFFER and the 4011 ACK; --proxy asks it of a server subnet', async (t) => {
  const x = explainDiscover(config, { mac: '52:54:00:12:34:03', arch: 7, iface: 'eth1', ciaddr: '198.18.2.58' });
  t.equal(x.reply, 'OFFER');
  t.equal(x.yiaddr, '0.0.0.0');
  t.equal(x.file, 'ipxe.efi');
  t.equal(x.bootServer?.reply, 'ACK');
  t.equal(x.bootServer?.file, 'ipxe.efi');
  t.match(x.bootServer?.why.join('\n'), /PXE boot server \(port 4011\)/);
  const ipxe = explainDiscover(config, { mac: '52:54:00:12:34:02', userClass: 'iPXE', vendorClass: 'PXEClient:Arch:00000:UNDI:002001', iface: 'eth1' });
  t.equal(ipxe.file, 'http://198.18.0.1/boot/52-54-00-12-34-02.ipxe');
  const what = explainDiscover(config, { mac: '52:54:00:00:00:01', arch: 0, iface: 'eth0', proxy: true });
  t.equal(what.reply, 'OFFER');
  t.equal(what.yiaddr, '0.0.0.0', '--proxy: no address even for the reserved node');
  t.equal(explainDiscover(config, { mac: '52:54:00:00:00:01', iface: 'eth1' }).reply, 'none', 'no vendor class: no reply on a proxy subnet');
});

t.test('recorded proxy exchanges (test/vectors/dhcp/proxy.json): the OFFERs are well formed and the chain makes them again byte for byte', async (t) => {
  const recorded = (JSON.parse(readFileSync(new URL('../vectors/dhcp/proxy.json', import.meta.url), 'utf8')) as { vectors: Vector[] }).vectors;
  const hex = (name: string) => Buffer.from(recorded.find((v) => v.name === name)!.hex, 'hex');
  // The lab's cluster file of `lab up --proxy` (src/lab/cluster.ts): what answered when they were recorded.
  const lab = parseConfig(`
head: { address: 198.18.0.1 }
cluster: { domain: lab.test }
subnets:
  - { network: 198.18.0.0/24, interface: eth0, mode: proxy }
nodes:
  - { name: n001, macs: [52:54:00:b0:00:01] }
  - { name: n002, macs: [52:54:00:b0:00:02] }
`, '<test>');
  const store = new MemoryStore();
  const model = new ClusterModel(lab, store);
  const dhcp = new DhcpService({ config: lab, model, store, log: silentLogger, metrics: new Metrics(), httpBase: 'http://198.18.0.1' });
  for (const [request, reply, file] of [
    ['proxy-bios-ipxe-discover', 'proxy-bios-bootherd-offer', 'http://198.18.0.1/boot/52-54-00-b0-00-01.ipxe'],
    ['proxy-uefi-firmware-discover', 'proxy-uefi-bootherd-offer', 'ipxe.efi'],
  ] as const) {
    const offer = decode(hex(reply));
    t.equal(type(offer), MessageType.OFFER, `${reply}: an OFFER`);
    proxyReplyShape(t, offer, reply);
    t.equal(offer.file, file, `${reply}: boot file`);
    t.equal(offer.siaddr, HEAD, `${reply}: next-server`);
    const again = exchange(dhcp, hex(request), 'eth0');
    t.same(again.bytes, hex(reply), `${request} through the chain gives the recorded OFFER, byte for byte`);
  }
  // The REQUESTs to the site's server name the address it offered: dropped by bootherd, and learned.
  for (const [request, node] of [['proxy-bios-ipxe-request', 'n001'], ['proxy-uefi-firmware-request', 'n002']] as const) {
    const ctx = dhcp.handle(hex(request), 'eth0', now, false);
    t.equal(ctx?.replyType, undefined, `${request}: not answered`);
    for (const f of ctx!.after) f();
    const asked = readIp(decode(hex(request)).options.get(Opt.REQUESTED_IP));
    t.equal(model.nodeByName(node)!.ip, intToIp(asked!), `${node}: learned the address it asked the site's server for`);
  }
  t.equal(recorded.filter((v) => v.name.endsWith('-4011')).length, 0, 'neither firmware asked port 4011 (both boot from the proxy OFFER)');
});

t.test('UEFI HTTP boot on a proxy subnet: HTTPClient echoed, the loader URL, no address', async (t) => {
  const { dhcp } = setup();
  const r = exchange(dhcp, reshape(vector('uefi-pxe-discover'), {}, [[Opt.VENDOR_CLASS, text('HTTPClient:Arch:00016:UNDI:003001')], [Opt.CLIENT_ARCH, u16(16)]]), 'eth1');
  t.equal(type(r.reply), MessageType.OFFER);
  t.equal(r.reply!.yiaddr, 0);
  t.equal(readText(r.reply!.options.get(Opt.VENDOR_CLASS)), 'HTTPClient');
  t.equal(r.reply!.file, 'http://198.18.0.1/loaders/ipxe.efi');
});

t.test('learned addresses are kept in the store: a restarted head, and another head on the same store, know them', async (t) => {
  const store = new MemoryStore({ shared: true });
  const a = new ClusterModel(config, store);
  const b = new ClusterModel(config, store);
  a.learnAddress(a.nodeByName('p001')!, '198.18.2.21', 'pxe-request', now);
  await new Promise((r) => setImmediate(r));
  t.same(store.get('addresses', 'p001'), { node: 'p001', ip: '198.18.2.21', from: 'pxe-request', at: now }, 'written to the store');
  t.equal(b.nodeByName('p001')!.ip, '198.18.2.21', 'the other head sees it');
  t.equal(b.nodeByIp(ipToInt('198.18.2.21'))?.name, 'p001');
  t.equal(new ClusterModel(config, store).nodeByName('p001')!.learned?.from, 'pxe-request', 'a restarted head starts with it');
  // p002 gets the same address from the site's server: p001's record goes.
  b.learnAddress(b.nodeByName('p002')!, '198.18.2.21', 'dhcp-request', now + 1);
  await new Promise((r) => setImmediate(r));
  t.equal(store.get('addresses', 'p001'), undefined, 'the old holder\'s record is deleted');
  t.equal(a.nodeByName('p001')!.ip, undefined, 'and the first head forgets it');
  t.equal(a.nodeByName('p002')!.ip, '198.18.2.21');
});
