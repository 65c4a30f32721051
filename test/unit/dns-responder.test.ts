/**
 * The DNS chain's one decision per query, through the responder as a client
 * sees it: each kind of decision (answer, error, cached, forward, refuse, and
 * an answer whose alias is chased upstream) and the counter it lands in.
 * The upstream is a socket on 127.0.0.1 in this test that answers every
 * question with one A record.
 */
import t from 'tap';
import dgram from 'node:dgram';
import packet from 'dns-packet';
import { ClusterModel } from '../../src/cluster/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { ipToInt } from '../../src/net/ipv4.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { Flag, RecordType, Rcode } from '../../protocols/dns/constants.ts';
import { encodeQuery } from '../../protocols/dns/query.ts';
import { DnsService } from '../../src/services/dns/service.ts';
import type { AnswerSource } from '../../src/services/dns/counters.ts';

const CLUSTER_CLIENT = ipToInt('198.18.0.5');
const OUTSIDER = ipToInt('203.0.113.9');
const UPSTREAM_A = '192.0.2.7';

async function setup(t: { teardown(fn: () => unknown): void }) {
  const upstream = dgram.createSocket('udp4');
  const asked: string[] = [];
  upstream.on('message', (msg, rinfo) => {
    const q = packet.decode(msg);
    const name = q.questions![0]!.name;
    asked.push(name);
    const reply = packet.encode({ type: 'response', id: q.id, flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE, questions: q.questions, answers: [{ name, type: 'A', ttl: 300, data: UPSTREAM_A }] });
    upstream.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => upstream.bind(0, '127.0.0.1', resolve));
  t.teardown(() => upstream.close());
  const config = parseConfig(`
cluster: { domain: lab.test }
head: { name: head, address: 198.18.0.1 }
subnets: [{ network: 198.18.0.0/24 }]
dns:
  upstreams: ["127.0.0.1:${upstream.address().port}"]
  aliases: [{ name: docs, target: ext.example.org }]
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11 }
`, '<test>');
  const store = new MemoryStore();
  const dns = new DnsService({ config, model: new ClusterModel(config, store), store, log: silentLogger, metrics: new Metrics() });
  await dns.responder.start();
  t.teardown(() => dns.stop());
  const sources = (): Record<AnswerSource, number> => Object.fromEntries(Object.entries(dns.counters.answers).map(([k, v]) => [k, v.value])) as Record<AnswerSource, number>;
  /** Asks `raw` as `client` over UDP; the response as dns-packet reads it, and the counter the answer landed in. */
  async function ask(raw: Buffer, client: number) {
    const before = sources();
    const out = dns.responder.respond(raw, client, 'udp');
    if (!out) throw new Error('no response');
    const r = packet.decode(await out);
    const after = sources();
    const source = (Object.keys(after) as AnswerSource[]).filter((k) => after[k] !== before[k]);
    return { rcode: (r.flags! & 0xf), aa: Boolean(r.flags! & Flag.AA), ra: Boolean(r.flags! & Flag.RA), answers: (r.answers ?? []).map((a) => `${a.type} ${'data' in a ? String(a.data) : ''}`), source };
  }
  return { ask, asked };
}

const query = (name: string, type: number, flags: number = Flag.RD) => encodeQuery(0x1234, name, type, flags);

t.test('each decision becomes its response', async (t) => {
  const { ask, asked } = await setup(t);

  t.same(await ask(query('n001.lab.test', RecordType.A), CLUSTER_CLIENT),
    { rcode: Rcode.NOERROR, aa: true, ra: true, answers: ['A 198.18.0.11'], source: ['authoritative'] }, 'answer: our own data, authoritative');
  t.same(await ask(query('nope.lab.test', RecordType.A), OUTSIDER),
    { rcode: Rcode.NXDOMAIN, aa: true, ra: false, answers: [], source: ['authoritative'] }, 'answer: no such name in our zone, for anyone');

  t.same(await ask(query('n001.lab.test', RecordType.A, Flag.RD | (2 << 11)), CLUSTER_CLIENT),
    { rcode: Rcode.NOTIMP, aa: false, ra: false, answers: [], source: ['error'] }, 'error: not a standard query (decided before recursion, so no RA)');
  const badvers = packet.encode({ type: 'query', id: 1, flags: packet.RECURSION_DESIRED, questions: [{ name: 'n001.lab.test', type: 'A' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 1, flags: 0, flag_do: false, options: [] }] });
  t.equal((await ask(badvers, CLUSTER_CLIENT)).rcode, Rcode.BADVERS & 0xf, 'error: EDNS version 1 (BADVERS, its low bits in the header)');
  const chaos = packet.encode({ type: 'query', id: 1, flags: packet.RECURSION_DESIRED, questions: [{ name: 'n001.lab.test', type: 'A', class: 'CH' }] });
  t.same(await ask(chaos, CLUSTER_CLIENT), { rcode: Rcode.REFUSED, aa: false, ra: false, answers: [], source: ['error'] }, 'error: class CH');
  t.same((await ask(query('lab.test', RecordType.AXFR), CLUSTER_CLIENT)).rcode, Rcode.REFUSED, 'error: zone transfer');

  t.same(await ask(query('www.example.org', RecordType.A), OUTSIDER),
    { rcode: Rcode.REFUSED, aa: false, ra: false, answers: [], source: ['error'] }, 'refuse: not ours, and the client may not recurse');
  t.same(await ask(query('www.example.org', RecordType.A, 0), CLUSTER_CLIENT),
    { rcode: Rcode.REFUSED, aa: false, ra: true, answers: [], source: ['error'] }, 'refuse: not ours, and no recursion asked for');
  t.same(asked, [], 'nothing so far went upstream');

  t.same(await ask(query('www.example.org', RecordType.A), CLUSTER_CLIENT),
    { rcode: Rcode.NOERROR, aa: false, ra: true, answers: [`A ${UPSTREAM_A}`], source: ['upstream'] }, 'forward: the upstream answers, not authoritative');
  t.same(await ask(query('www.example.org', RecordType.A), CLUSTER_CLIENT),
    { rcode: Rcode.NOERROR, aa: false, ra: true, answers: [`A ${UPSTREAM_A}`], source: ['cache'] }, 'cached: the same question again');
  t.same(asked, ['www.example.org'], 'the cached answer did not go upstream');

  t.same(await ask(query('docs.lab.test', RecordType.A), OUTSIDER),
    { rcode: Rcode.NOERROR, aa: true, ra: false, answers: ['CNAME ext.example.org'], source: ['authoritative'] }, 'answer: an alias leading outside, not chased for an outsider');
  t.same(await ask(query('docs.lab.test', RecordType.A), CLUSTER_CLIENT),
    { rcode: Rcode.NOERROR, aa: true, ra: true, answers: ['CNAME ext.example.org', `A ${UPSTREAM_A}`], source: ['authoritative'] }, 'answer: the alias chased upstream for a cluster client');
  t.same(asked, ['www.example.org', 'ext.example.org'], 'only the chase went upstream');
});
