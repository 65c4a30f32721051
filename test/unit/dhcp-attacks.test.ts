/**
 * What a machine on the provisioning network can do to the DHCP service with
 * crafted packets, through the real handler chain (no sockets): DECLINEs from
 * clients that hold nothing, DECLINEs of addresses outside every pool,
 * starvation from one relay port or interface, and forged RELEASEs.
 */
import t from 'tap';
import { decode, encode, type DhcpMessage } from '../../protocols/dhcp/codec.ts';
import { ipList, MessageType, Opt, readU8, u8 } from '../../protocols/dhcp/options.ts';
import { parseConfig } from '../../src/config/load.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { intToIp, ipToInt } from '../../src/net/ipv4.ts';
import { buildReply } from '../../src/services/dhcp/reply.ts';
import { DhcpService } from '../../src/services/dhcp/service.ts';
import { MemoryStore } from '../../src/store/memory.ts';

const SUBNETS = `
head: { address: 198.18.0.1 }
subnets:
  - { network: 198.18.0.0/24, interface: eth0, router: 198.18.0.1, pool: 198.18.0.100-198.18.0.110, leaseTime: 1h }
  - { network: 198.18.1.0/24, pool: 198.18.1.100-198.18.1.139, leaseTime: 1h }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11 }
`;
const HEAD = ipToInt('198.18.0.1');
const RELAY = ipToInt('198.18.1.1');
const POOL = 11;
const ip = ipToInt;
// The pool gauges read the real clock when scraped.
let now = Date.now();

function setup(extra = '') {
  const config = parseConfig(SUBNETS + extra, '<test>');
  const store = new MemoryStore();
  const metrics = new Metrics();
  const dhcp = new DhcpService({ config, model: new ClusterModel(config, store), store, log: silentLogger, metrics, httpBase: 'http://198.18.0.1' });
  return { store, dhcp, metrics };
}

const macOf = (n: number) => `bb:00:00:00:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
const clientIdOf = (mac: string) => Buffer.from(`01${mac.replace(/:/g, '')}`, 'hex');

function request(type: number, mac: string, opts: Array<[number, Buffer]> = [], fields: Partial<DhcpMessage> = {}): Buffer {
  const chaddr = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(chaddr);
  return encode({
    op: 1, htype: 1, hlen: 6, hops: 0, xid: 7, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0,
    chaddr, sname: '', file: '', options: new Map([[Opt.MESSAGE_TYPE, u8(type)], ...opts]), ...fields,
  }).bytes;
}

async function exchange(dhcp: DhcpService, bytes: Buffer, iface: string | undefined = 'eth0') {
  const ctx = dhcp.handle(bytes, iface, now, false);
  if (!ctx || ctx.replyType === undefined) return { ctx, reply: undefined };
  if (ctx.commit) await ctx.commit();
  return { ctx, reply: decode(buildReply(ctx).bytes) };
}

const type = (m: DhcpMessage | undefined) => readU8(m?.options.get(Opt.MESSAGE_TYPE));

/** Where a crafted client sits: on eth0, or behind the relay with option 82. */
interface Seat { readonly iface?: string; readonly giaddr?: number; readonly agent?: Buffer }
const ETH0: Seat = { iface: 'eth0' };

/** Option 82 as a switch adds it: circuit id (the port) and remote id (the switch). */
const agent = (port: string, sw = 'sw1') => Buffer.concat([Buffer.from([1, port.length]), Buffer.from(port), Buffer.from([2, sw.length]), Buffer.from(sw)]);

/** A full DISCOVER, REQUEST; the address ACKed, or the reply type / drop reason that stopped it. */
async function dora(dhcp: DhcpService, mac: string, seat: Seat = ETH0, extra: Array<[number, Buffer]> = []): Promise<{ ip?: number; stop?: string }> {
  const opts: Array<[number, Buffer]> = [[Opt.CLIENT_ID, clientIdOf(mac)], ...extra, ...(seat.agent ? [[Opt.RELAY_AGENT, seat.agent] as [number, Buffer]] : [])];
  const fields = { giaddr: seat.giaddr ?? 0, hops: seat.giaddr ? 1 : 0 };
  const o = await exchange(dhcp, request(MessageType.DISCOVER, mac, opts, fields), seat.iface);
  if (!o.reply) return { stop: o.ctx?.drop ?? 'no offer' };
  const a = await exchange(dhcp, request(MessageType.REQUEST, mac, [[Opt.REQUESTED_IP, ipList([o.reply.yiaddr])], [Opt.SERVER_ID, ipList([HEAD])], ...opts], fields), seat.iface);
  if (type(a.reply) !== MessageType.ACK) return { stop: a.reply ? `type ${type(a.reply)}` : a.ctx?.drop ?? 'no ack' };
  return { ip: a.reply!.yiaddr };
}

const settle = () => new Promise((r) => setImmediate(r));

/** A gauge's value as a scrape reports it. */
function scrape(metrics: Metrics, series: string): number {
  const line = metrics.render().split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

t.test('finding 4: DECLINEs from clients that hold nothing quarantine nothing and take no lease', async (t) => {
  const { dhcp, store, metrics } = setup();
  const victim = 'aa:00:00:00:00:01';
  const bound = await dora(dhcp, victim);
  t.equal(bound.ip, ip('198.18.0.100'), 'the victim holds a lease');
  // 100 DECLINEs from MACs that hold nothing, covering every pool address.
  for (let i = 0; i < 100; i++) {
    const mac = macOf(i);
    await exchange(dhcp, request(MessageType.DECLINE, mac, [[Opt.REQUESTED_IP, ipList([ip('198.18.0.100') + (i % POOL)])], [Opt.SERVER_ID, ipList([HEAD])], [Opt.CLIENT_ID, clientIdOf(mac)]]));
  }
  // 50 more from MACs that were only offered the address they decline.
  for (let i = 100; i < 150; i++) {
    const mac = macOf(i);
    const offer = (await exchange(dhcp, request(MessageType.DISCOVER, mac, [[Opt.CLIENT_ID, clientIdOf(mac)]]))).reply;
    if (!offer) continue;
    await exchange(dhcp, request(MessageType.DECLINE, mac, [[Opt.REQUESTED_IP, ipList([offer.yiaddr])], [Opt.SERVER_ID, ipList([HEAD])], [Opt.CLIENT_ID, clientIdOf(mac)]]));
  }
  // The victim's MAC without its client id (what a forger who read chaddr off the wire sends).
  await exchange(dhcp, request(MessageType.DECLINE, victim, [[Opt.REQUESTED_IP, ipList([bound.ip!])], [Opt.SERVER_ID, ipList([HEAD])]]));
  await settle();
  const declined = [...store.values('leases')].filter((l) => l.state === 'declined');
  t.same(declined.map((l) => l.ip), [], 'nothing quarantined');
  t.equal(store.get('leases', '198.18.0.100')?.state, 'bound', 'the victim\'s lease is still bound');
  t.equal(store.get('leases', '198.18.0.100')?.mac, victim, 'and still the victim\'s');
  t.equal(metrics.value('bootherd_dhcp_dropped_total', { reason: 'decline-not-holder' }), 151, 'every refused DECLINE counted');
  const renew = await exchange(dhcp, request(MessageType.REQUEST, victim, [[Opt.CLIENT_ID, clientIdOf(victim)]], { ciaddr: bound.ip! }));
  t.equal(type(renew.reply), MessageType.ACK, 'the victim renews');
  const fresh = await dora(dhcp, 'aa:00:00:00:00:02');
  t.ok(fresh.ip !== undefined, `a new client gets an address (${fresh.stop ?? intToIp(fresh.ip!)})`);
});

t.test('finding 4: DECLINEs by the holders themselves quarantine at most a quarter of the pool', async (t) => {
  const { dhcp, store, metrics } = setup();
  for (let i = 0; i < POOL; i++) {
    const mac = macOf(i);
    const { ip: a } = await dora(dhcp, mac);
    t.ok(a, `client ${i} bound`);
    await exchange(dhcp, request(MessageType.DECLINE, mac, [[Opt.REQUESTED_IP, ipList([a!])], [Opt.SERVER_ID, ipList([HEAD])], [Opt.CLIENT_ID, clientIdOf(mac)]]));
    await settle();
  }
  const quarantined = [...store.values('leases')].filter((l) => l.state === 'declined' && l.expiresAt > now);
  t.equal(quarantined.length, Math.floor(POOL / 4), 'a quarter of the pool quarantined');
  t.equal(metrics.value('bootherd_dhcp_dropped_total', { reason: 'quarantine-full' }), POOL - Math.floor(POOL / 4), 'the rest ended their lease and were counted');
  t.equal(scrape(metrics, 'bootherd_dhcp_pool_declined{subnet="198.18.0.0/24"}'), Math.floor(POOL / 4), 'the quarantine is visible');
  t.ok((await dora(dhcp, 'aa:00:00:00:00:03')).ip !== undefined, 'a new client still gets an address');
});

t.test('finding 9: DECLINEs outside every pool store nothing; nothing a client sends grows the store past the pool', async (t) => {
  const { dhcp, store, metrics } = setup();
  const holder = 'aa:00:00:00:00:09';
  const { ip: held } = await dora(dhcp, holder);
  const cid: [number, Buffer] = [Opt.CLIENT_ID, clientIdOf(holder)];
  for (let i = 0; i < 20_000; i++) {
    // Addresses on no served subnet (10.x) and on a served subnet but outside its pool, from the holder and from random MACs.
    const target = i % 2 ? ipToInt('10.0.0.0') + i : ip('198.18.0.2') + (i % 90);
    const mac = i % 3 ? macOf(i) : holder;
    await exchange(dhcp, request(MessageType.DECLINE, mac, [[Opt.REQUESTED_IP, ipList([target])], cid], { ciaddr: held! }));
  }
  await settle();
  t.equal(store.size('leases'), 1, 'only the holder\'s lease is stored');
  t.equal(store.get('leases', intToIp(held!))?.state, 'bound', 'and it is still bound');
  t.equal(metrics.value('bootherd_dhcp_dropped_total', { reason: 'decline-outside-pool' }), 20_000, 'every one counted');

  // Every other way a packet writes a record: DORA from new MACs (directly and relayed), REQUESTs for
  // addresses outside the pools, RELEASEs of addresses nobody holds. Records stay within the pools (one per address).
  for (let i = 0; i < 600; i++) {
    const mac = macOf(1000 + i);
    await dora(dhcp, mac, i % 2 ? ETH0 : { giaddr: RELAY });
    await exchange(dhcp, request(MessageType.REQUEST, mac, [[Opt.REQUESTED_IP, ipList([ip('198.18.0.2') + (i % 90)])], [Opt.SERVER_ID, ipList([HEAD])]]));
    await exchange(dhcp, request(MessageType.REQUEST, mac, [], { ciaddr: ipToInt('10.1.0.0') + i }), undefined);
    await exchange(dhcp, request(MessageType.RELEASE, mac, [], { ciaddr: ipToInt('10.2.0.0') + i }));
    now += 1000;
  }
  await settle();
  t.ok(store.size('leases') <= POOL + 40, `lease records bounded by the pools (${store.size('leases')} of ${POOL + 40})`);
  const inPool = (a: number) => (a >= ip('198.18.0.100') && a <= ip('198.18.0.110')) || (a >= ip('198.18.1.100') && a <= ip('198.18.1.139'));
  const outside = [...store.values('leases')].filter((l) => !inPool(ipToInt(l.ip))).map((l) => l.ip);
  t.same(outside.slice(0, 3), [], `no record outside every pool (${outside.length})`);
});

t.test('finding 9: declined records outside every pool, left by older versions, are removed', async (t) => {
  const { store } = setup();
  const record = (a: string, state: 'declined' | 'bound') => ({ ip: a, mac: 'aa:00:00:00:00:0a', subnet: '198.18.0.0/24', state, expiresAt: now + 600_000, updatedAt: now });
  await store.put('leases', '10.9.9.9', record('10.9.9.9', 'declined'));
  await store.put('leases', '198.18.0.50', record('198.18.0.50', 'declined'));
  await store.put('leases', '198.18.0.105', record('198.18.0.105', 'declined'));
  await store.put('leases', '198.18.0.106', record('198.18.0.106', 'bound'));
  const config = parseConfig(SUBNETS, '<test>');
  const dhcp = new DhcpService({ config, model: new ClusterModel(config, store), store, log: silentLogger, metrics: new Metrics(), httpBase: 'http://198.18.0.1' });
  t.equal(await dhcp.leases.pruneStrayDeclines(), 2);
  t.same([...store.values('leases')].map((l) => l.ip).sort(), ['198.18.0.105', '198.18.0.106'], 'pool records kept');
});

t.test('finding 10: dhcp.limits bound the leases one relay port, relay or interface can take', async (t) => {
  const { dhcp, metrics } = setup('dhcp: { limits: { perPort: 2, perRelay: 5, perInterface: 3 } }\n');
  // The attack: 115 MACs from one switch port.
  const port1: Seat = { giaddr: RELAY, agent: agent('sw1/p1') };
  const results = [];
  for (let i = 0; i < 115; i++) results.push(await dora(dhcp, macOf(i), port1));
  const got = results.filter((r) => r.ip !== undefined);
  t.equal(got.length, 2, 'two leases for the port');
  t.equal(results.filter((r) => r.stop === 'limit-port').length, 113, 'the rest refused with a counted reason');
  t.equal(metrics.value('bootherd_dhcp_dropped_total', { reason: 'limit-port' }), 113);
  t.equal(metrics.value('bootherd_dhcp_limit_refused_total', { limit: 'port' }), 113);
  t.equal(scrape(metrics, 'bootherd_dhcp_pool_free{subnet="198.18.1.0/24"}'), 38, 'the relayed pool keeps its free addresses');

  const renew = await exchange(dhcp, request(MessageType.REQUEST, macOf(0), [[Opt.CLIENT_ID, clientIdOf(macOf(0))], [Opt.RELAY_AGENT, port1.agent!]], { ciaddr: got[0]!.ip!, giaddr: RELAY }));
  t.equal(type(renew.reply), MessageType.ACK, 'a client at the limit renews');
  const again = await dora(dhcp, macOf(1), port1);
  t.equal(again.ip, got[1]!.ip, 'and a client at the limit gets its own address again');

  // Other ports of the same relay, up to the relay's limit.
  t.ok((await dora(dhcp, 'aa:00:00:00:02:01', { giaddr: RELAY, agent: agent('sw1/p2') })).ip, 'another port is served');
  t.ok((await dora(dhcp, 'aa:00:00:00:02:02', { giaddr: RELAY, agent: agent('sw1/p2') })).ip, 'twice');
  t.ok((await dora(dhcp, 'aa:00:00:00:02:03', { giaddr: RELAY, agent: agent('sw1/p3') })).ip, 'a third port');
  t.equal((await dora(dhcp, 'aa:00:00:00:02:04', { giaddr: RELAY, agent: agent('sw1/p4') })).stop, 'limit-relay', 'the relay\'s limit holds past the ports');
  t.equal((await dora(dhcp, 'aa:00:00:00:02:05', { giaddr: RELAY })).stop, 'limit-relay', 'and without option 82');

  // Directly attached: the interface's limit; a reserved node is not limited.
  const direct = [];
  for (let i = 0; i < 10; i++) direct.push(await dora(dhcp, macOf(500 + i)));
  t.equal(direct.filter((r) => r.ip !== undefined).length, 3, 'three leases on eth0');
  t.equal(metrics.value('bootherd_dhcp_limit_refused_total', { limit: 'interface' }), 7);
  t.equal((await dora(dhcp, '52:54:00:00:00:01')).ip, ip('198.18.0.11'), 'the reserved node gets its address');
  t.equal(scrape(metrics, 'bootherd_dhcp_pool_free{subnet="198.18.0.0/24"}'), POOL - 3, 'free addresses of the direct pool');
});

t.test('finding 10: two offers under a limit of one: the second REQUEST is NAKed', async (t) => {
  const { dhcp, metrics } = setup('dhcp: { limits: { perPort: 1 } }\n');
  const seat: Seat = { giaddr: RELAY, agent: agent('sw2/p9') };
  const fields = { giaddr: RELAY, hops: 1 };
  const offers = [];
  for (const mac of ['aa:00:00:00:03:01', 'aa:00:00:00:03:02']) {
    offers.push((await exchange(dhcp, request(MessageType.DISCOVER, mac, [[Opt.RELAY_AGENT, seat.agent!]], fields), undefined)).reply!);
  }
  const acks = [];
  for (const [i, mac] of ['aa:00:00:00:03:01', 'aa:00:00:00:03:02'].entries()) {
    acks.push(type((await exchange(dhcp, request(MessageType.REQUEST, mac, [[Opt.REQUESTED_IP, ipList([offers[i]!.yiaddr])], [Opt.SERVER_ID, ipList([HEAD])], [Opt.RELAY_AGENT, seat.agent!]], fields), undefined)).reply));
  }
  t.same(acks, [MessageType.ACK, MessageType.NAK]);
  t.equal(metrics.value('bootherd_dhcp_limit_refused_total', { limit: 'port' }), 1);
});

t.test('finding 10: without dhcp.limits nothing is refused', async (t) => {
  const { dhcp, metrics } = setup();
  const results = [];
  for (let i = 0; i < 20; i++) results.push(await dora(dhcp, macOf(i), { giaddr: RELAY, agent: agent('sw1/p1') }));
  t.equal(results.filter((r) => r.ip !== undefined).length, 20);
  t.equal(metrics.value('bootherd_dhcp_limit_refused_total', { limit: 'port' }), 0);
});

t.test('finding 11: a RELEASE must match MAC and client id; a released address goes to others last', async (t) => {
  const { dhcp, store, metrics } = setup();
  const victim = 'aa:00:00:00:00:11';
  const { ip: held } = await dora(dhcp, victim);
  const release = (mac: string, opts: Array<[number, Buffer]>) => exchange(dhcp, request(MessageType.RELEASE, mac, [[Opt.SERVER_ID, ipList([HEAD])], ...opts], { ciaddr: held! }));
  t.equal((await release(victim, [])).ctx?.drop, 'release-not-holder', 'the victim\'s MAC without its client id');
  t.equal((await release(victim, [[Opt.CLIENT_ID, clientIdOf('aa:00:00:00:00:12')]])).ctx?.drop, 'release-not-holder', 'with another client id');
  t.equal((await release('aa:00:00:00:00:12', [[Opt.CLIENT_ID, clientIdOf(victim)]])).ctx?.drop, 'release-not-holder', 'the client id from another MAC');
  await settle();
  t.equal(store.get('leases', intToIp(held!))?.state, 'bound', 'none of them freed the lease');
  t.equal(metrics.value('bootherd_dhcp_dropped_total', { reason: 'release-not-holder' }), 3, 'all three counted');

  // A forger who copies both (DHCPv4 cannot tell): the address is kept for its owner while others are free.
  await release(victim, [[Opt.CLIENT_ID, clientIdOf(victim)]]);
  await settle();
  t.equal(store.get('leases', intToIp(held!))?.state, 'released');
  const other = await dora(dhcp, 'aa:00:00:00:00:13', ETH0, [[Opt.REQUESTED_IP, ipList([held!])]]);
  t.not(other.ip, held, 'another client, even asking for it, gets another address');
  const renew = await exchange(dhcp, request(MessageType.REQUEST, victim, [[Opt.CLIENT_ID, clientIdOf(victim)]], { ciaddr: held! }));
  t.equal(type(renew.reply), MessageType.ACK, 'the owner renews its address');

  // Only when the pool has nothing else does the released address go to another client.
  await release(victim, [[Opt.CLIENT_ID, clientIdOf(victim)]]);
  await settle();
  const rest = [];
  for (let i = 0; i < POOL - 2; i++) rest.push((await dora(dhcp, macOf(i))).ip);
  t.notOk(rest.includes(held), 'the other pool addresses go first');
  t.equal((await dora(dhcp, macOf(99))).ip, held, 'then the released one');
});
