/**
 * The DHCP state machine through the real handler chain (no sockets):
 * selecting, init-reboot, renewing, NAKs, DECLINE, RELEASE, INFORM, and the
 * reply's shape (option order, echoes, size limit, destination).
 */
import t from 'tap';
import { decode, encode, type DhcpMessage } from '../../protocols/dhcp/codec.ts';
import { ipList, MessageType, Opt, readIp, readU8, text, u16, u8 } from '../../protocols/dhcp/options.ts';
import { parseConfig } from '../../src/config/load.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { ipToInt } from '../../src/net/ipv4.ts';
import { buildReply, replyDestination } from '../../src/services/dhcp/reply.ts';
import { DhcpService } from '../../src/services/dhcp/service.ts';
import { MemoryStore } from '../../src/store/memory.ts';

const config = parseConfig(`
head: { address: 198.18.0.1 }
cluster: { domain: lab.test }
subnets:
  - { network: 198.18.0.0/24, interface: eth0, router: 198.18.0.1, pool: 198.18.0.100-198.18.0.110, leaseTime: 1h }
  - { network: 198.18.1.0/24, pool: 198.18.1.100-198.18.1.110 }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11 }
`, '<test>');

const HEAD = ipToInt('198.18.0.1');
let now = 1_700_000_000_000;

function setup() {
  const store = new MemoryStore();
  const metrics = new Metrics();
  const dhcp = new DhcpService({ config, model: new ClusterModel(config, store), store, log: silentLogger, metrics, httpBase: 'http://198.18.0.1' });
  return { store, dhcp, metrics };
}

function request(type: number, mac: string, opts: Array<[number, Buffer]> = [], fields: Partial<DhcpMessage> = {}): Buffer {
  const chaddr = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(chaddr);
  return encode({
    op: 1, htype: 1, hlen: 6, hops: 0, xid: 42, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0,
    chaddr, sname: '', file: '', options: new Map([[Opt.MESSAGE_TYPE, u8(type)], ...opts]), ...fields,
  }).bytes;
}

async function exchange(dhcp: DhcpService, bytes: Buffer, iface: string | undefined = 'eth0') {
  const ctx = dhcp.handle(bytes, iface, now, true);
  if (!ctx || ctx.replyType === undefined) return { ctx, reply: undefined };
  if (ctx.commit) await ctx.commit();
  return { ctx, reply: decode(buildReply(ctx).bytes) };
}

const type = (m: DhcpMessage | undefined) => readU8(m?.options.get(Opt.MESSAGE_TYPE));
const ip = ipToInt;

t.test('DORA for a reserved node and for a pool client', async (t) => {
  const { dhcp, store } = setup();
  const offer = (await exchange(dhcp, request(MessageType.DISCOVER, '52:54:00:00:00:01'))).reply!;
  t.equal(type(offer), MessageType.OFFER);
  t.equal(offer.yiaddr, ip('198.18.0.11'));
  const ack = (await exchange(dhcp, request(MessageType.REQUEST, '52:54:00:00:00:01', [[Opt.REQUESTED_IP, ipList([offer.yiaddr])], [Opt.SERVER_ID, ipList([HEAD])]]))).reply!;
  t.equal(type(ack), MessageType.ACK);
  t.equal(store.get('leases', '198.18.0.11')?.node, 'n001', 'lease stored with its node');
  const o2 = (await exchange(dhcp, request(MessageType.DISCOVER, 'aa:00:00:00:00:01'))).reply!;
  t.equal(o2.yiaddr, ip('198.18.0.100'));
});

t.test('SELECTING for another server withdraws our offer; a bad server id answer is silence', async (t) => {
  const { dhcp } = setup();
  const offer = (await exchange(dhcp, request(MessageType.DISCOVER, 'aa:00:00:00:00:02'))).reply!;
  const r = await exchange(dhcp, request(MessageType.REQUEST, 'aa:00:00:00:00:02', [[Opt.REQUESTED_IP, ipList([offer.yiaddr])], [Opt.SERVER_ID, ipList([ip('198.18.0.254')])]]));
  t.equal(r.reply, undefined, 'no reply to a REQUEST for another server');
  t.same(r.ctx?.trace?.at(-1), 'client chose server 198.18.0.254, not us: offer withdrawn');
});

t.test('INIT-REBOOT: ACK a known lease, NAK a wrong address, a wrong subnet, an unknown lease', async (t) => {
  const { dhcp } = setup();
  const ok = (await exchange(dhcp, request(MessageType.REQUEST, '52:54:00:00:00:01', [[Opt.REQUESTED_IP, ipList([ip('198.18.0.11')])]]))).reply!;
  t.equal(type(ok), MessageType.ACK, 'a node asking for its reservation is ACKed');
  const wrong = (await exchange(dhcp, request(MessageType.REQUEST, '52:54:00:00:00:01', [[Opt.REQUESTED_IP, ipList([ip('198.18.0.105')])]]))).reply!;
  t.equal(type(wrong), MessageType.NAK, 'a node asking for another address is NAKed');
  const subnet = (await exchange(dhcp, request(MessageType.REQUEST, 'aa:00:00:00:00:03', [[Opt.REQUESTED_IP, ipList([ip('198.18.5.5')])]]))).reply!;
  t.equal(type(subnet), MessageType.NAK, 'an address from another network is NAKed');
  t.match(subnet.options.get(Opt.MESSAGE)!.toString(), /not on network 198\.18\.0\.0\/24/, 'with a message saying why');
  t.equal(subnet.yiaddr, 0);
  t.notOk(subnet.options.has(Opt.LEASE_TIME), 'a NAK carries no lease options');
  const unknown = (await exchange(dhcp, request(MessageType.REQUEST, 'aa:00:00:00:00:04', [[Opt.REQUESTED_IP, ipList([ip('198.18.0.101')])]]))).reply!;
  t.equal(type(unknown), MessageType.NAK, 'a client we have no lease for is NAKed (authoritative)');
});

t.test('RENEWING extends the lease; a client renewing someone else\'s address is NAKed', async (t) => {
  const { dhcp, store } = setup();
  const offer = (await exchange(dhcp, request(MessageType.DISCOVER, 'aa:00:00:00:00:05'))).reply!;
  await exchange(dhcp, request(MessageType.REQUEST, 'aa:00:00:00:00:05', [[Opt.REQUESTED_IP, ipList([offer.yiaddr])], [Opt.SERVER_ID, ipList([HEAD])]]));
  const first = store.get('leases', '198.18.0.100')!.expiresAt;
  now += 1_800_000;
  const renew = (await exchange(dhcp, request(MessageType.REQUEST, 'aa:00:00:00:00:05', [], { ciaddr: offer.yiaddr }))).reply!;
  t.equal(type(renew), MessageType.ACK);
  t.equal(renew.ciaddr, offer.yiaddr, 'ciaddr echoed');
  t.ok(store.get('leases', '198.18.0.100')!.expiresAt > first, 'expiry moved');
  const thief = (await exchange(dhcp, request(MessageType.REQUEST, 'aa:00:00:00:00:06', [], { ciaddr: offer.yiaddr }))).reply!;
  t.equal(type(thief), MessageType.NAK);
});

t.test('DECLINE from the holder quarantines; RELEASE from the holder frees; from anyone else both are dropped and counted', async (t) => {
  const { dhcp, store, metrics } = setup();
  const cid = [Opt.CLIENT_ID, Buffer.from('01aa0000000007', 'hex')] as [number, Buffer];
  const ack = (await exchange(dhcp, request(MessageType.REQUEST, 'aa:00:00:00:00:07', [[Opt.REQUESTED_IP, ipList([ip('198.18.0.100')])], cid]))).reply;
  t.equal(type(ack), MessageType.NAK, 'no lease yet: INIT-REBOOT is NAKed');
  const offer = (await exchange(dhcp, request(MessageType.DISCOVER, 'aa:00:00:00:00:07', [cid]))).reply!;
  await exchange(dhcp, request(MessageType.REQUEST, 'aa:00:00:00:00:07', [[Opt.REQUESTED_IP, ipList([offer.yiaddr])], [Opt.SERVER_ID, ipList([HEAD])], cid]));
  t.equal(store.get('leases', '198.18.0.100')?.state, 'bound');
  const decline = (mac: string, opts: Array<[number, Buffer]>) => exchange(dhcp, request(MessageType.DECLINE, mac, [[Opt.REQUESTED_IP, ipList([ip('198.18.0.100')])], [Opt.SERVER_ID, ipList([HEAD])], ...opts]));
  t.equal((await decline('aa:00:00:00:00:77', [cid])).ctx?.drop, 'decline-not-holder', 'another MAC');
  t.equal((await decline('aa:00:00:00:00:07', [])).ctx?.drop, 'decline-not-holder', 'the MAC without its client id');
  t.equal(store.get('leases', '198.18.0.100')?.state, 'bound', 'the lease survives both');
  t.equal(metrics.value('bootherd_dhcp_dropped_total', { reason: 'decline-not-holder' }), 2, 'both counted');
  t.equal((await decline('aa:00:00:00:00:07', [cid])).ctx?.drop, undefined, 'the holder is honoured');
  await new Promise((r) => setImmediate(r));
  t.equal(store.get('leases', '198.18.0.100')?.state, 'declined');
  const next = (await exchange(dhcp, request(MessageType.DISCOVER, 'aa:00:00:00:00:08'))).reply!;
  t.equal(next.yiaddr, ip('198.18.0.101'), 'the declined address is skipped');
  await exchange(dhcp, request(MessageType.REQUEST, 'aa:00:00:00:00:08', [[Opt.REQUESTED_IP, ipList([next.yiaddr])], [Opt.SERVER_ID, ipList([HEAD])]]));
  const forged = await exchange(dhcp, request(MessageType.RELEASE, 'aa:00:00:00:00:09', [[Opt.SERVER_ID, ipList([HEAD])]], { ciaddr: next.yiaddr }));
  t.equal(forged.ctx?.drop, 'release-not-holder');
  t.equal(store.get('leases', '198.18.0.101')?.state, 'bound', 'a RELEASE from another MAC frees nothing');
  await exchange(dhcp, request(MessageType.RELEASE, 'aa:00:00:00:00:08', [[Opt.SERVER_ID, ipList([HEAD])]], { ciaddr: next.yiaddr }));
  await new Promise((r) => setImmediate(r));
  t.equal(store.get('leases', '198.18.0.101')?.state, 'released');
});

t.test('INFORM: parameters, no lease, unicast to ciaddr', async (t) => {
  const { dhcp, store } = setup();
  const { ctx, reply } = await exchange(dhcp, request(MessageType.INFORM, 'aa:00:00:00:00:09', [], { ciaddr: ip('198.18.0.50') }));
  t.equal(type(reply), MessageType.ACK);
  t.equal(reply!.yiaddr, 0);
  t.notOk(reply!.options.has(Opt.LEASE_TIME), 'no lease time in an INFORM reply');
  t.ok(reply!.options.has(Opt.ROUTER));
  t.same(replyDestination(ctx!, 67, 68), { address: ipToInt('198.18.0.50'), port: 68 });
  t.equal(store.size('leases'), 0);
});

t.test('reply shape: option order, echoes, parameter list, size limit, destination', async (t) => {
  const { dhcp } = setup();
  const clientId = Buffer.from('ff00000001000100000000525400000001', 'hex');
  const agent = Buffer.from([1, 4, 0x65, 0x74, 0x68, 0x31]);
  const prl = Buffer.from([Opt.NTP_SERVERS, Opt.DOMAIN_NAME, Opt.SUBNET_MASK]);
  const { ctx, reply } = await exchange(dhcp, request(MessageType.DISCOVER, 'aa:00:00:00:00:0a',
    [[Opt.CLIENT_ID, clientId], [Opt.PARAMETER_LIST, prl], [Opt.RELAY_AGENT, agent], [Opt.MAX_MESSAGE_SIZE, u16(1500)]],
    { giaddr: ip('198.18.1.1'), hops: 1 }), undefined);
  const codes = [...reply!.options.keys()];
  t.same(codes.slice(0, 2), [Opt.MESSAGE_TYPE, Opt.SERVER_ID], 'message type and server id lead');
  t.ok(codes.indexOf(Opt.NTP_SERVERS) < codes.indexOf(Opt.DOMAIN_NAME), 'requested options in the client\'s order');
  t.same(reply!.options.get(Opt.CLIENT_ID), clientId, 'client identifier echoed (RFC 6842)');
  t.same(reply!.options.get(Opt.RELAY_AGENT), agent, 'option 82 echoed');
  t.equal(codes.at(-1), Opt.RELAY_AGENT, 'option 82 last');
  t.equal(readIp(reply!.options.get(Opt.SERVER_ID)), HEAD);
  t.equal(reply!.yiaddr, ip('198.18.1.100'), 'subnet chosen by giaddr');
  t.same(replyDestination(ctx!, 67, 68), { address: ipToInt('198.18.1.1'), port: 67 }, 'relayed replies go to the relay\'s server port');
  const local = (await exchange(dhcp, request(MessageType.DISCOVER, 'aa:00:00:00:00:0b', [[Opt.HOST_NAME, text('x')]], { flags: 0x8000 }))).ctx!;
  t.same(replyDestination(local, 67, 68), { address: ipToInt('255.255.255.255'), port: 68 }, 'broadcast flag: broadcast');
  t.notOk(buildReply(local).bytes.length > 548, 'within 576 bytes when the client did not say more');
});

t.test('a client without a hardware address (InfiniBand) is known by its client id', async (t) => {
  const { dhcp } = setup();
  const cid = Buffer.from('ff0000000100020000000000000000000000000000', 'hex');
  const bytes = request(MessageType.DISCOVER, '00:00:00:00:00:00', [[Opt.CLIENT_ID, cid]], { htype: 32, hlen: 0 });
  const { ctx, reply } = await exchange(dhcp, bytes);
  t.equal(ctx!.clientKey, `id:${cid.toString('hex')}`);
  t.equal(type(reply), MessageType.OFFER);
  const anonymous = request(MessageType.DISCOVER, '00:00:00:00:00:00', [], { htype: 32, hlen: 0 });
  t.equal(dhcp.handle(anonymous, 'eth0', now, false), undefined, 'no hardware address and no client id: dropped');
});

t.test('requests from a network we do not serve are dropped', async (t) => {
  const { dhcp } = setup();
  t.equal((await exchange(dhcp, request(MessageType.DISCOVER, 'aa:00:00:00:00:0c'), 'eth9')).reply, undefined, 'unknown interface');
  t.equal((await exchange(dhcp, request(MessageType.DISCOVER, 'aa:00:00:00:00:0c', [], { giaddr: ip('198.19.0.1') }), undefined)).reply, undefined, 'unknown relay');
});
