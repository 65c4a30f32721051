/**
 * `bootherd explain` on a cluster of several heads says which head answers a
 * MAC, and it is the head whose DHCP service does answer that MAC's DISCOVER
 * (the same rendezvous hash); --down moves the answer to the next head in the
 * MAC's order, and a name not in heads: is refused naming --down.
 */
import t from 'tap';
import { encode } from '../../protocols/dhcp/codec.ts';
import { MessageType, Opt, u8 } from '../../protocols/dhcp/options.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { macToBytes } from '../../src/net/mac.ts';
import { explainDiscover } from '../../src/services/dhcp/explain.ts';
import { DhcpService } from '../../src/services/dhcp/service.ts';
import { MemoryStore } from '../../src/store/memory.ts';

const HEADS = ['ha', 'hb', 'hc'];
const fileOf = (self: number) => parseConfig(`
cluster: { name: c1, domain: lab.test }
head: { name: ${HEADS[self]}, address: 198.18.0.${self + 1} }
heads:
${HEADS.map((h, i) => `  - { name: ${h}, address: 198.18.0.${i + 1} }`).join('\n')}
subnets:
  - { network: 198.18.0.0/24, interface: eth0, pool: 198.18.0.100-198.18.0.200 }
`, '<test>');

/** Which of the three heads' DHCP services make an OFFER for `mac` (all heads live). */
function offering(mac: string): string[] {
  const store = new MemoryStore({ shared: true });
  return HEADS.filter((name, i) => {
    const config = fileOf(i);
    const dhcp = new DhcpService({ config, model: new ClusterModel(config, store), store, log: silentLogger, metrics: new Metrics(), httpBase: 'http://198.18.0.1', heads: { self: name, live: () => HEADS } });
    const chaddr = Buffer.alloc(16);
    macToBytes(mac).copy(chaddr);
    const bytes = encode({ op: 1, htype: 1, hlen: 6, hops: 0, xid: 1, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr, sname: '', file: '', options: new Map([[Opt.MESSAGE_TYPE, u8(MessageType.DISCOVER)]]) }).bytes;
    return dhcp.handle(bytes, 'eth0', Date.now(), false)?.replyType === MessageType.OFFER;
  });
}

t.test('explain names the head that answers each MAC; --down moves it to the next in the order', async (t) => {
  const config = fileOf(0);
  const seen = new Set<string>();
  for (let i = 0; i < 12; i++) {
    const mac = `52:54:00:00:10:${i.toString(16).padStart(2, '0')}`;
    const x = explainDiscover(config, { mac });
    t.ok(x.answering, `${mac}: explained`);
    t.same(offering(mac), [x.answering!.head], `${mac}: ${x.answering!.head} is the one head that offers`);
    t.same([...x.answering!.order].sort(), HEADS, 'the order lists every head');
    seen.add(x.answering!.head!);
    const down = explainDiscover(config, { mac, down: [x.answering!.head!] });
    t.equal(down.answering!.head, x.answering!.order[1], 'with the first down, the second answers');
    t.match(down.answering!.why, /down/, 'and says why');
  }
  t.ok(seen.size > 1, `the MACs spread over the heads (${[...seen].join(', ')})`);
  t.equal(explainDiscover(config, { mac: '52:54:00:00:10:01', down: HEADS }).answering!.head, undefined, 'every head down: none');
  t.throws(() => explainDiscover(config, { mac: '52:54:00:00:10:01', down: ['hx'] }), /--down: no head named "hx" in the cluster file's heads: \(ha, hb, hc\)/);
  const single = parseConfig('head: { address: 198.18.0.1 }\nsubnets: [{ network: 198.18.0.0/24, interface: eth0, pool: 198.18.0.100-198.18.0.200 }]\n', '<test>');
  t.equal(explainDiscover(single, { mac: '52:54:00:00:10:01' }).answering, undefined, 'one head: nothing to choose');
});

t.test('several heads start looking for free addresses at different places in the pool', async (t) => {
  const firstOffer = (i: number) => {
    const store = new MemoryStore({ shared: true });
    const config = fileOf(i);
    const dhcp = new DhcpService({ config, model: new ClusterModel(config, store), store, log: silentLogger, metrics: new Metrics(), httpBase: 'http://198.18.0.1', heads: { self: HEADS[i]!, live: () => [HEADS[i]!] } });
    const chaddr = Buffer.alloc(16);
    macToBytes('52:54:00:00:20:01').copy(chaddr);
    const bytes = encode({ op: 1, htype: 1, hlen: 6, hops: 0, xid: 1, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr, sname: '', file: '', options: new Map([[Opt.MESSAGE_TYPE, u8(MessageType.DISCOVER)]]) }).bytes;
    return dhcp.handle(bytes, 'eth0', Date.now(), false)!.yiaddr;
  };
  const offers = HEADS.map((_, i) => firstOffer(i));
  t.equal(new Set(offers).size, HEADS.length, `each head proposes its own first address (${offers.join(', ')})`);
});
