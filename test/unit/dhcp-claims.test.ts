/**
 * DHCP with a shared store (several heads), through the real handler chain
 * on MemoryStore({ shared: true }): two heads (two DhcpServices with their
 * own server ids) over one store. The claims race the way two heads' do:
 * both decide from a cache that has not seen the other's claim, then claim.
 * Also answeringHead, the pure choice of the head that answers a MAC.
 */
import t from 'tap';
import { decode, encode, type DhcpMessage } from '../../protocols/dhcp/codec.ts';
import { ipList, MessageType, Opt, readU8, u8 } from '../../protocols/dhcp/options.ts';
import { parseConfig } from '../../src/config/load.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { intToIp, ipToInt } from '../../src/net/ipv4.ts';
import { answeringHead, ANSWER_ALL_AFTER_SECS } from '../../src/services/dhcp/heads.ts';
import { ClaimLostError } from '../../src/services/dhcp/leases.ts';
import { buildReply } from '../../src/services/dhcp/reply.ts';
import { DhcpService } from '../../src/services/dhcp/service.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { ClaimExpect, ClaimOutcome, ClaimSupersede, Store } from '../../src/store/store.ts';
import type { LeaseRecord } from '../../src/cluster/types.ts';

/** A claim that takes a turn of the event loop to reach the store, as one to etcd takes a round trip. */
class SlowClaims extends MemoryStore {
  constructor() { super({ shared: true }); }
  override async claim(clientKey: string, lease: LeaseRecord, expect: ClaimExpect, supersede?: ClaimSupersede): Promise<ClaimOutcome> {
    await new Promise((r) => setImmediate(r));
    return super.claim(clientKey, lease, expect, supersede);
  }
}

const RELAY = ipToInt('198.18.0.9');
const configOf = (head: string) => parseConfig(`
head: { address: ${head} }
cluster: { domain: lab.test }
subnets:
  - { network: 198.18.0.0/24, pool: 198.18.0.100-198.18.0.103, leaseTime: 1h }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11 }
`, '<test>');
const now = 1_700_000_000_000;

function head(address: string, store: Store, heads?: { self: string; live: () => string[] }) {
  const config = configOf(address);
  const metrics = new Metrics();
  const dhcp = new DhcpService({ config, model: new ClusterModel(config, store), store, log: silentLogger, metrics, httpBase: `http://${address}`, heads });
  return { dhcp, metrics, id: ipToInt(address) };
}

function request(type: number, mac: string, opts: Array<[number, Buffer]> = [], fields: Partial<DhcpMessage> = {}): Buffer {
  const chaddr = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(chaddr);
  return encode({
    op: 1, htype: 1, hlen: 6, hops: 1, xid: 7, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: RELAY,
    chaddr, sname: '', file: '', options: new Map([[Opt.MESSAGE_TYPE, u8(type)], ...opts]), ...fields,
  }).bytes;
}
const selecting = (mac: string, ip: number, server: number) => request(MessageType.REQUEST, mac, [[Opt.REQUESTED_IP, ipList([ip])], [Opt.SERVER_ID, ipList([server])]]);
const type = (m: DhcpMessage | undefined) => readU8(m?.options.get(Opt.MESSAGE_TYPE));

/** Counts lease writes the store made visible. */
function writes(store: Store): { n: number } {
  const c = { n: 0 };
  store.onChange((ch) => { if (ch.collection === 'leases') c.n++; });
  return c;
}

t.test('two heads decide DISCOVERs from the same cache: the claims give them different addresses', async (t) => {
  const store = new SlowClaims();
  const a = head('198.18.0.1', store);
  const b = head('198.18.0.2', store);
  const ca = a.dhcp.handle(request(MessageType.DISCOVER, 'aa:00:00:00:00:01'), undefined, now, true)!;
  const cb = b.dhcp.handle(request(MessageType.DISCOVER, 'aa:00:00:00:00:02'), undefined, now, true)!;
  t.equal(ca.yiaddr, cb.yiaddr, 'both caches propose the same free address');
  t.ok(ca.claim && cb.claim, 'neither OFFER may leave before its claim');
  const [ia, ib] = await Promise.all([ca.claim!(), cb.claim!()]);
  t.equal(ia, ipToInt('198.18.0.100'));
  t.equal(ib, ipToInt('198.18.0.101'), 'the loser claimed the next candidate');
  t.equal(store.get('leases', '198.18.0.100')?.mac, 'aa:00:00:00:00:01');
  t.equal(store.get('leases', '198.18.0.100')?.state, 'offered');
  t.equal(store.get('leases', '198.18.0.100')?.server, '198.18.0.1', 'the claim names its head');
  t.ok(store.get('leases', '198.18.0.100')!.expiresAt <= now + 60_000, 'an offer claim expires with the offer');
  t.match(b.metrics.render(), /bootherd_dhcp_claims_total\{outcome="lost"\} 1/, 'the loser\'s first claim was refused by the store');

  // A cache that has already seen the other head's claim skips the address without a claim.
  const current = new MemoryStore({ shared: true });
  const c = head('198.18.0.1', current);
  const d = head('198.18.0.2', current);
  const cc = c.dhcp.handle(request(MessageType.DISCOVER, 'aa:00:00:00:00:01'), undefined, now, false)!;
  const cd = d.dhcp.handle(request(MessageType.DISCOVER, 'aa:00:00:00:00:02'), undefined, now, false)!;
  t.same(await Promise.all([cc.claim!(), cd.claim!()]), [ipToInt('198.18.0.100'), ipToInt('198.18.0.101')]);
  t.notMatch(d.metrics.render(), /outcome="lost"/, 'no refused claim');
});

t.test('every address claimed: no OFFER; the same client through two heads gets one address', async (t) => {
  const store = new MemoryStore({ shared: true });
  const a = head('198.18.0.1', store);
  const b = head('198.18.0.2', store);
  for (let i = 0; i < 4; i++) {
    const c = a.dhcp.handle(request(MessageType.DISCOVER, `aa:00:00:00:01:0${i}`), undefined, now, false)!;
    t.ok(await c.claim!());
  }
  // b's cache sees a's claims at once here; make it decide before it could, as a lagging cache would.
  const late = b.dhcp.handle(request(MessageType.DISCOVER, 'aa:00:00:00:01:09'), undefined, now, false);
  t.equal(late?.replyType, undefined, 'the pool is claimed by the other head: no OFFER');

  const store2 = new MemoryStore({ shared: true });
  const a2 = head('198.18.0.1', store2);
  const b2 = head('198.18.0.2', store2);
  const x = a2.dhcp.handle(request(MessageType.DISCOVER, 'aa:00:00:00:02:01'), undefined, now, false)!;
  const y = b2.dhcp.handle(request(MessageType.DISCOVER, 'aa:00:00:00:02:01'), undefined, now, false)!;
  const [ix, iy] = await Promise.all([x.claim!(), y.claim!()]);
  t.equal(ix, iy, 'both heads offer the one address the store holds for the client');
  t.equal(store2.get('leases', '198.18.0.101'), undefined, 'no second address claimed for it');
});

t.test('one client, one address: a head\'s stale offer of a client\'s bound address to another client does not move the client', async (t) => {
  const store = new MemoryStore({ shared: true });
  const a = head('198.18.0.1', store);
  const b = head('198.18.0.2', store);
  const mac = 'aa:00:00:00:03:01';
  const offer = b.dhcp.handle(request(MessageType.DISCOVER, mac), undefined, now, false)!;
  const ip = (await offer.claim!())!;
  const ack = b.dhcp.handle(selecting(mac, ip, b.id), undefined, now, false)!;
  await ack.commit?.();
  t.equal(store.get('leases', intToIp(ip))?.state, 'bound', 'b bound the client');
  // What a DISCOVER whose claims all lost used to leave in a's table: its own offer of that address to another client.
  a.dhcp.leases.offer(ip, 'aa:00:00:00:03:02', now);
  const again = a.dhcp.handle(request(MessageType.DISCOVER, mac), undefined, now + 1000, false)!;
  const offered = again.claim ? await again.claim() : again.yiaddr;
  t.equal(offered, ip, 'a offers the client its bound address, not a second one');
  const bound = [...store.values('leases')].filter((l) => l.mac === mac && l.state !== 'released');
  t.equal(bound.length, 1, 'the store holds one record for the client');
});

t.test('the ACK is a claim: an ACK whose address the store gave another client is refused', async (t) => {
  const store = new MemoryStore({ shared: true });
  const a = head('198.18.0.1', store);
  const b = head('198.18.0.2', store);
  const ip = ipToInt('198.18.0.102');
  // Both decide before either commits (each head's cache behind the other's claim).
  const ra = a.dhcp.handle(selecting('aa:00:00:00:03:01', ip, a.id), undefined, now, false)!;
  const rb = b.dhcp.handle(selecting('aa:00:00:00:03:02', ip, b.id), undefined, now, false)!;
  t.equal(ra.replyType, MessageType.ACK);
  t.equal(rb.replyType, MessageType.ACK);
  await ra.commit!();
  await t.rejects(rb.commit!(), ClaimLostError, 'the second binding loses: its ACK never leaves');
  t.equal(store.get('leases', '198.18.0.102')?.mac, 'aa:00:00:00:03:01');
  t.equal(store.get('leases', '198.18.0.102')?.state, 'bound');
});

t.test('one client, one address: an ACK by one head releases the client\'s offer from another; that offer\'s ACK is refused', async (t) => {
  const store = new MemoryStore({ shared: true });
  const a = head('198.18.0.1', store);
  const b = head('198.18.0.2', store);
  const mac = 'aa:00:00:00:05:01';
  const offered = (await a.dhcp.handle(request(MessageType.DISCOVER, mac), undefined, now, false)!.claim!())!;
  const other = ipToInt('198.18.0.103');
  t.not(offered, other);
  // The client took head B's offer of another address (its REQUEST names B).
  const rb = b.dhcp.handle(selecting(mac, other, b.id), undefined, now, false)!;
  t.equal(rb.replyType, MessageType.ACK);
  await rb.commit!();
  t.equal(store.get('leases', '198.18.0.103')?.state, 'bound');
  t.equal(store.get('leases', intToIp(offered))?.state, 'released', 'head A\'s offer was released by the same claim');
  const ra = a.dhcp.handle(selecting(mac, offered, a.id), undefined, now, false)!;
  if (ra.commit) await t.rejects(ra.commit(), ClaimLostError, 'a binding of the released offer is refused: the client holds its ACKed address');
  else t.not(ra.replyType, MessageType.ACK, 'no ACK of the released offer');
  const bound = [...store.values('leases')].filter((l) => l.mac === mac && l.state === 'bound' && l.expiresAt > now);
  t.same(bound.map((l) => l.ip), ['198.18.0.103'], 'the client holds one address in the store');
});

t.test('cost: DISCOVER of a bound client writes nothing, a renewal writes once, another head\'s offer is not answered', async (t) => {
  const store = new MemoryStore({ shared: true });
  const a = head('198.18.0.1', store);
  const b = head('198.18.0.2', store);
  const count = writes(store);
  const mac = 'aa:00:00:00:04:01';
  const d = a.dhcp.handle(request(MessageType.DISCOVER, mac), undefined, now, false)!;
  const ip = (await d.claim!())!;
  const req = a.dhcp.handle(selecting(mac, ip, a.id), undefined, now, false)!;
  await req.commit!();
  t.equal(count.n, 2, 'a new lease: the offer claim and the binding');
  count.n = 0;
  const again = b.dhcp.handle(request(MessageType.DISCOVER, mac), undefined, now + 1000, false)!;
  t.equal(again.yiaddr, ip, 'the other head offers the client its bound address');
  t.equal(again.claim, undefined, 'with no claim');
  t.equal(count.n, 0, 'and no write');
  const renew = b.dhcp.handle(request(MessageType.REQUEST, mac, [], { ciaddr: ip }), undefined, now + 2000, false)!;
  t.equal(renew.replyType, MessageType.ACK);
  await renew.commit!();
  t.equal(count.n, 1, 'a renewal is one write');
  t.equal(store.get('leases', '198.18.0.100')?.server, '198.18.0.2');

  // The client answers a's OFFER: b stays silent and says whose the record is.
  const other = b.dhcp.handle(selecting('aa:00:00:00:04:02', ipToInt('198.18.0.101'), a.id), undefined, now, true)!;
  t.equal(other.replyType, undefined, 'RFC 2131: a REQUEST for another server is not answered');
  const d2 = a.dhcp.handle(request(MessageType.DISCOVER, 'aa:00:00:00:04:03'), undefined, now, false)!;
  await d2.claim!();
  const chose = b.dhcp.handle(selecting('aa:00:00:00:04:03', d2.yiaddr, a.id), undefined, now, true)!;
  t.equal(chose.replyType, undefined);
  t.match(chose.trace!.at(-1), /the store: 198\.18\.0\.\d+ offered by head 198\.18\.0\.1/);
});

t.test('a non-shared store: no claims, records as before', async (t) => {
  const store = new MemoryStore();
  const a = head('198.18.0.1', store);
  const d = a.dhcp.handle(request(MessageType.DISCOVER, 'aa:00:00:00:05:01'), undefined, now, false)!;
  t.equal(d.claim, undefined, 'the OFFER leaves without a write');
  t.equal(store.size('leases'), 0);
  const r = a.dhcp.handle(selecting('aa:00:00:00:05:01', d.yiaddr, a.id), undefined, now, false)!;
  await r.commit!();
  t.equal(store.get('leases', '198.18.0.100')?.server, undefined, 'no head named in the record');
  t.equal(type(decode(buildReply(r).bytes)), MessageType.ACK);
});

t.test('answeringHead: one head per MAC, spread, stable when a head goes, everyone after a wait', async (t) => {
  const heads = ['ha', 'hb', 'hc'];
  const share = new Map<string, number>();
  let moved = 0;
  for (let i = 0; i < 3000; i++) {
    const mac = `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const h = answeringHead(mac, heads, 0)!;
    t.equal(answeringHead(mac, [...heads].reverse(), 0), h, 'the order of the live list does not matter');
    share.set(h, (share.get(h) ?? 0) + 1);
    const without = answeringHead(mac, ['ha', 'hc'], 0)!;
    if (h !== 'hb' && without !== h) moved++;
    if (h === 'hb') t.not(without, 'hb');
  }
  for (const h of heads) t.ok(share.get(h)! > 700 && share.get(h)! < 1300, `${h} answers ${share.get(h)} of 3000`);
  t.equal(moved, 0, 'when hb goes, only its clients move');
  t.equal(answeringHead('02:00:00:00:00:01', heads, ANSWER_ALL_AFTER_SECS), undefined, 'a client that waited is answered by all');
  t.equal(answeringHead('02:00:00:00:00:01', [], 0), undefined, 'no registry: every head answers');
});

t.test('with the heads hook, exactly one of three heads answers a DISCOVER', async (t) => {
  const store = new MemoryStore({ shared: true });
  const names = ['ha', 'hb', 'hc'];
  const hs = names.map((n, i) => head(`198.18.0.${i + 1}`, store, { self: n, live: () => names }));
  for (let i = 0; i < 20; i++) {
    const mac = `aa:00:00:00:06:${i.toString(16).padStart(2, '0')}`;
    const answered = hs.filter((h) => h.dhcp.handle(request(MessageType.DISCOVER, mac), undefined, now, false)?.replyType === MessageType.OFFER);
    t.equal(answered.length, 1, `one OFFER for ${mac}`);
    const waited = hs.filter((h) => h.dhcp.handle(request(MessageType.DISCOVER, mac, [], { secs: ANSWER_ALL_AFTER_SECS }), undefined, now, false)?.replyType === MessageType.OFFER);
    t.equal(waited.length, 3, 'after a wait, every head');
  }
});
