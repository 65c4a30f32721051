/**
 * A million junk datagrams through the DHCP decode path and handler chain, in
 * process. Half are random bytes (nearly all malformed); half are mutations of
 * recorded packets, each first given a random message type so that DECLINEs,
 * RELEASEs and INFORMs reach the chain too. Whatever a datagram is, the chain
 * must not throw, must write nothing to the store (no reply is committed here,
 * so only a DECLINE or RELEASE could write, and none can hold a lease), and
 * must either answer or count the datagram under exactly one drop reason.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { decode, encode } from '../../protocols/dhcp/codec.ts';
import { Opt, u8 } from '../../protocols/dhcp/options.ts';
import { parseConfig } from '../../src/config/load.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { DhcpService } from '../../src/services/dhcp/service.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { mutate, prng, randomBytes } from '../helpers/fuzz.ts';

const config = parseConfig(`
head: { address: 198.18.0.1 }
subnets:
  - { network: 198.18.0.0/24, interface: eth0, pool: 198.18.0.100-198.18.0.200 }
nodes:
  - { name: n001, macs: [52:54:00:12:34:01], ip: 198.18.0.11 }
`, '<fuzz>');

const recorded = (JSON.parse(readFileSync(new URL('../vectors/dhcp/recorded.json', import.meta.url), 'utf8')) as { vectors: Array<{ hex: string }> })
  .vectors.map((v) => decode(Buffer.from(v.hex, 'hex')));
/** Every recorded packet as every message type 1-18 (and as BOOTP, without option 53). */
const bases = recorded.flatMap((m) => Array.from({ length: 19 }, (_, type) => {
  const options = new Map(m.options);
  if (type === 0) options.delete(Opt.MESSAGE_TYPE);
  else options.set(Opt.MESSAGE_TYPE, u8(type));
  return encode({ ...m, options }).bytes;
}));

/** Sum of every series of a counter, as a scrape reports it. */
function total(metrics: Metrics, name: string): number {
  return metrics.render().split('\n').filter((l) => l.startsWith(`${name}{`)).reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

t.test('1,000,000 junk datagrams', async (t) => {
  const store = new MemoryStore();
  const metrics = new Metrics();
  const dhcp = new DhcpService({ config, model: new ClusterModel(config, store), store, log: silentLogger, metrics, httpBase: 'http://198.18.0.1' });
  let writes = 0;
  store.onChange(() => { writes++; });
  const rand = prng(20261124);
  let threw = 0;
  let answered = 0;
  let unanswered = 0;
  let silentInChain = 0;
  const chainReasons = new Map<string, number>();
  for (let i = 0; i < 1_000_000; i++) {
    const junk = i % 2 ? mutate(rand, bases[rand() % bases.length]!) : randomBytes(rand, rand() % 700);
    try {
      const ctx = dhcp.handle(junk, 'eth0', 1_700_000_000_000 + i, false);
      if (ctx?.replyType !== undefined) { answered++; continue; }
      unanswered++;
      if (!ctx) continue; // dropped before the chain (decode, op, BOOTP, identity): counted by handle itself
      if (ctx.drop === undefined) silentInChain++;
      else chainReasons.set(ctx.drop, (chainReasons.get(ctx.drop) ?? 0) + 1);
    } catch {
      threw++;
    }
  }
  await new Promise((r) => setImmediate(r));
  t.equal(threw, 0, 'the handler chain never throws');
  t.equal(writes, 0, 'nothing is written to the store');
  t.equal(silentInChain, 0, 'every request the chain does not answer has a drop reason');
  t.equal(total(metrics, 'bootherd_dhcp_dropped_total'), unanswered, `every unanswered datagram is counted once (${unanswered}; ${answered} answered)`);
  // The junk must reach the decisions worth testing, or the counts above prove little.
  for (const reason of ['decline-not-holder', 'decline-outside-pool', 'decline-without-address', 'release-not-holder', 'not-client-message']) {
    t.ok((chainReasons.get(reason) ?? 0) > 0, `${reason} reached (${chainReasons.get(reason) ?? 0})`);
  }
  t.ok(answered > 1000, 'well-formed requests are answered');
});

t.test('200,000 junk datagrams on a proxy subnet and to its PXE boot server (4011)', async (t) => {
  const proxy = parseConfig(`
head: { address: 198.18.0.1 }
subnets:
  - { network: 198.18.0.0/24, interface: eth0, pool: 198.18.0.100-198.18.0.200 }
  - { network: 198.18.2.0/24, interface: eth1, mode: proxy }
nodes:
  - { name: p001, macs: [52:54:00:12:34:02] }
  - { name: p002, macs: [52:54:00:12:34:03] }
`, '<fuzz>');
  const store = new MemoryStore();
  const metrics = new Metrics();
  const model = new ClusterModel(proxy, store);
  const dhcp = new DhcpService({ config: proxy, model, store, log: silentLogger, metrics, httpBase: 'http://198.18.0.1' });
  const firmware = (JSON.parse(readFileSync(new URL('../vectors/dhcp/proxy.json', import.meta.url), 'utf8')) as { vectors: Array<{ hex: string }> })
    .vectors.map((v) => decode(Buffer.from(v.hex, 'hex'))).filter((m) => m.op === 1);
  const proxyBases = [...bases, ...firmware.flatMap((m) => [1, 3, 4, 7, 8].map((type) => encode({ ...m, options: new Map([...m.options, [Opt.MESSAGE_TYPE, u8(type)]]) }).bytes))];
  // A mutated firmware REQUEST that is still a valid one from a node's MAC teaches that node's address: the only write allowed.
  const writes = new Map<string, number>();
  store.onChange((c) => { writes.set(c.collection, (writes.get(c.collection) ?? 0) + 1); });
  const rand = prng(20261207);
  let threw = 0;
  let unanswered = 0;
  let answeredWithAddress = 0;
  const reasons = new Map<string, number>();
  for (let i = 0; i < 200_000; i++) {
    const junk = i % 4 ? mutate(rand, proxyBases[rand() % proxyBases.length]!) : randomBytes(rand, rand() % 700);
    // Half to port 67 on the proxy subnet's interface, half to 4011 from an address on it.
    const bootServer = i % 2 ? { address: 0xc6120200 + (rand() % 256), port: 68 } : undefined;
    try {
      const ctx = dhcp.handle(junk, bootServer ? undefined : 'eth1', 1_700_000_000_000 + i, false, bootServer);
      for (const f of ctx?.after ?? []) f();
      if (ctx?.replyType !== undefined) {
        if (ctx.subnet?.mode === 'proxy' && ctx.yiaddr !== 0) answeredWithAddress++;
        continue;
      }
      unanswered++;
      if (ctx?.drop) reasons.set(ctx.drop, (reasons.get(ctx.drop) ?? 0) + 1);
    } catch {
      threw++;
    }
  }
  t.equal(threw, 0, 'the handler chain never throws');
  t.same([...writes.keys()].filter((c) => c !== 'addresses'), [], `nothing but learned addresses is written to the store (${writes.get('addresses') ?? 0} of those)`);
  t.equal(answeredWithAddress, 0, 'no reply on the proxy subnet carries an address');
  t.equal(total(metrics, 'bootherd_dhcp_dropped_total'), unanswered, `every unanswered datagram is counted once (${unanswered})`);
  for (const reason of ['proxy-no-vendor-class', 'proxy-foreign-vendor-class', 'proxy-bad-vendor-options', 'proxy-not-booting', 'other-server']) {
    t.ok((reasons.get(reason) ?? 0) > 0, `${reason} reached (${reasons.get(reason) ?? 0})`);
  }
  for (const n of model.nodes()) if (n.ip !== undefined) t.ok(n.ip.startsWith('198.18.2.'), `${n.name} learned only an address of the proxy subnet (${n.ip})`);
});
