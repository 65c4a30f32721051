/**
 * Zone data from the cluster model, the compiled index (answers as dns-packet
 * reads them), the zone source's live updates and the forwarding cache.
 */
import t from 'tap';
import packet from 'dns-packet';
import { ClusterModel } from '../../src/cluster/model.ts';
import type { LeaseRecord } from '../../src/cluster/types.ts';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { parseCidr } from '../../src/net/ipv4.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { Flag, RecordType, Rcode } from '../../protocols/dns/constants.ts';
import { decodeQuery, encodeQuery } from '../../protocols/dns/query.ts';
import { buildResponse } from '../../protocols/dns/response.ts';
import { scanResponse } from '../../protocols/dns/scan.ts';
import { AnswerCache } from '../../src/services/dns/cache.ts';
import { buildZoneData, leaseLabel, reverseName6, reverseZones, type ZoneInput } from '../../src/services/dns/zone-data.ts';
import { ZoneIndex } from '../../src/services/dns/zone-index.ts';
import { ZoneSource } from '../../src/services/dns/zone-source.ts';

const CONFIG = `
cluster: { domain: lab.test }
head: { name: head, address: 198.18.0.1 }
subnets: [{ network: 198.18.0.0/24 }, { network: 198.18.8.0/22 }]
dns:
  slurm: { controller: head, backups: [n002] }
  aliases: [{ name: www, target: n001 }, { name: docs, target: ext.example.org }, { name: n001, target: n002 }, { name: loop1, target: loop2 }, { name: loop2, target: loop1 }, { name: gone, target: missing }]
  txt: [{ name: n001, text: [rack 1, "row 2"] }]
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11, ip6: "fd00::11" }
  - { name: n002, macs: [52:54:00:00:00:02], ip: 198.18.8.12 }
hosts:
  - { name: nas, ip: 198.18.0.50 }
  - { name: nas, ip: 198.18.0.51 }
  - { name: n001, ip: 198.18.0.99 }
  - { name: backup.lab.test, ip: 10.1.2.3 }
srv:
  - { name: _ldap._tcp, target: n001, port: 389 }
`;

function input(overrides: Partial<ZoneInput> = {}): ZoneInput {
  const c = parseConfig(CONFIG, '<test>');
  return {
    domain: c.cluster.domain,
    head: c.head,
    subnets: c.subnets.map((s) => parseCidr(s.network)),
    nodes: c.nodes.map((n) => ({ ...n, source: 'config' as const })),
    hosts: c.hosts.map((h) => ({ ...h, source: 'config' as const })),
    srv: c.srv.map((s) => ({ ...s, source: 'config' as const })),
    leases: [],
    dns: c.dns,
    serial: 42,
    now: 1_000_000,
    ...overrides,
  };
}

/** Asks the index a question and reads the response the way a client would (through dns-packet). */
function ask(index: ZoneIndex, name: string, type: keyof typeof RecordType) {
  const raw = encodeQuery(7, name, RecordType[type], 0);
  const q = decodeQuery(raw);
  const answer = index.lookup(q.name, q.type, q.nameLength);
  if (!answer) return undefined;
  const d = packet.decode(buildResponse(raw, q, Flag.AA, answer.rcode, answer.sections, 1232));
  const show = (rs: packet.Answer[] | undefined) => (rs ?? []).map((r) => `${r.name} ${r.type} ${JSON.stringify((r as { data?: unknown }).data)}`);
  return { rcode: (d as { rcode?: string }).rcode, answers: show(d.answers), authority: show(d.authorities), additional: show(d.additionals), chase: answer.chase };
}

t.test('records from nodes, hosts, SRV, aliases, TXT and the Slurm controller', async (t) => {
  const zone = new ZoneIndex(buildZoneData(input()));
  t.same(ask(zone, 'n001.lab.test', 'A')!.answers, ['n001.lab.test A "198.18.0.11"'], 'the node wins over a host of the same name');
  t.same(ask(zone, 'n001.lab.test', 'AAAA')!.answers, ['n001.lab.test AAAA "fd00::11"']);
  t.same(ask(zone, 'n001.lab.test', 'TXT')!.answers, ['n001.lab.test TXT [{"type":"Buffer","data":[114,97,99,107,32,49]},{"type":"Buffer","data":[114,111,119,32,50]}]']);
  t.same(ask(zone, 'nas.lab.test', 'A')!.answers, ['nas.lab.test A "198.18.0.50"', 'nas.lab.test A "198.18.0.51"'], 'two hosts of one name: both addresses');
  t.same(ask(zone, 'head.lab.test', 'A')!.answers, ['head.lab.test A "198.18.0.1"']);
  t.same(ask(zone, 'backup.lab.test', 'A')!.answers, ['backup.lab.test A "10.1.2.3"'], 'a name ending with the domain is taken as written');

  const slurm = ask(zone, '_slurmctld._tcp.lab.test', 'SRV')!;
  t.same(slurm.answers, [
    '_slurmctld._tcp.lab.test SRV {"priority":10,"weight":0,"port":6817,"target":"head.lab.test"}',
    '_slurmctld._tcp.lab.test SRV {"priority":20,"weight":0,"port":6817,"target":"n002.lab.test"}',
  ], 'the controller first, the backup after');
  t.same(slurm.additional, ['head.lab.test A "198.18.0.1"', 'n002.lab.test A "198.18.8.12"'], 'targets\' addresses ride along');
  t.same(ask(zone, '_ldap._tcp.lab.test', 'SRV')!.additional, ['n001.lab.test A "198.18.0.11"', 'n001.lab.test AAAA "fd00::11"']);

  t.same(ask(zone, 'www.lab.test', 'A')!.answers, ['www.lab.test CNAME "n001.lab.test"', 'n001.lab.test A "198.18.0.11"'], 'an alias and its target');
  t.same(ask(zone, 'www.lab.test', 'CNAME')!.answers, ['www.lab.test CNAME "n001.lab.test"']);
  t.match(ask(zone, 'docs.lab.test', 'A'), { rcode: 'NOERROR', answers: ['docs.lab.test CNAME "ext.example.org"'], chase: 'ext.example.org' }, 'an alias leaving our data is chased upstream');
  t.match(ask(zone, 'gone.lab.test', 'A'), { rcode: 'NXDOMAIN', answers: ['gone.lab.test CNAME "missing.lab.test"'], authority: [/^lab.test SOA/] }, 'RFC 6604: the rcode of the last name');
  t.equal(ask(zone, 'loop1.lab.test', 'A')!.answers.length, 2, 'an alias loop ends');
  t.same(buildZoneData(input()).conflicts.filter((c) => c.includes('alias')), ['alias n001.lab.test would hide its other records: skipped']);
});

t.test('reverse zones, PTR and negative answers', async (t) => {
  const zone = new ZoneIndex(buildZoneData(input()));
  t.same(ask(zone, '11.0.18.198.in-addr.arpa', 'PTR')!.answers, ['11.0.18.198.in-addr.arpa PTR "n001.lab.test"']);
  t.same(ask(zone, '12.8.18.198.in-addr.arpa', 'PTR')!.answers, ['12.8.18.198.in-addr.arpa PTR "n002.lab.test"'], 'a /22 subnet');
  t.same(ask(zone, '3.2.1.10.in-addr.arpa', 'PTR')!.answers, ['3.2.1.10.in-addr.arpa PTR "backup.lab.test"'], 'a host outside every subnet still has its PTR');
  t.same(ask(zone, reverseName6('fd00::11'), 'PTR')!.answers, [`${reverseName6('fd00::11')} PTR "n001.lab.test"`]);
  t.match(ask(zone, '99.0.18.198.in-addr.arpa', 'PTR'), { rcode: 'NXDOMAIN', authority: [/^0\.18\.198\.in-addr\.arpa SOA/] });
  t.match(ask(zone, '1.11.18.198.in-addr.arpa', 'PTR'), { rcode: 'NXDOMAIN', authority: [/^11\.18\.198\.in-addr\.arpa SOA/] });
  t.equal(ask(zone, '1.12.18.198.in-addr.arpa', 'PTR'), undefined, 'outside our reverse zones: not ours');

  t.match(ask(zone, 'nope.lab.test', 'A'), { rcode: 'NXDOMAIN', answers: [], authority: [/^lab.test SOA .*"minimum":60/] });
  t.match(ask(zone, 'n002.lab.test', 'AAAA'), { rcode: 'NOERROR', answers: [], authority: [/^lab.test SOA/] }, 'NODATA: the name exists');
  t.match(ask(zone, '_tcp.lab.test', 'SRV'), { rcode: 'NOERROR', answers: [] }, 'an empty non-terminal exists (RFC 8020)');
  t.equal(ask(zone, 'example.org', 'A'), undefined, 'not ours');
  t.equal(ask(zone, 'test', 'A'), undefined, 'the parent of our domain is not ours');

  t.same(ask(zone, 'lab.test', 'NS')!.answers, ['lab.test NS "head.lab.test"']);
  t.same(ask(zone, 'lab.test', 'NS')!.additional, ['head.lab.test A "198.18.0.1"']);
  t.match(ask(zone, 'lab.test', 'SOA')!.answers, [/^lab.test SOA .*"serial":42/]);
  t.same(ask(zone, '8.18.198.in-addr.arpa', 'NS')!.answers, ['8.18.198.in-addr.arpa NS "head.lab.test"']);
  t.equal(ask(zone, 'lab.test', 'ANY')!.answers.length, 2, 'ANY at the apex: SOA and NS');
});

t.test('reverse zones split at octet boundaries', async (t) => {
  const z = (...nets: string[]) => reverseZones(nets.map(parseCidr));
  t.same(z('198.18.0.0/24'), ['0.18.198.in-addr.arpa']);
  t.same(z('198.18.4.0/22'), ['4.18.198.in-addr.arpa', '5.18.198.in-addr.arpa', '6.18.198.in-addr.arpa', '7.18.198.in-addr.arpa']);
  t.same(z('198.18.0.64/26', '198.18.0.128/26'), ['0.18.198.in-addr.arpa'], 'longer than /24: the enclosing /24, once');
  t.same(z('198.18.0.0/16'), ['18.198.in-addr.arpa']);
  t.equal(z('10.0.0.0/12').length, 16);
  t.same(z('10.0.0.0/8'), ['10.in-addr.arpa']);
});

t.test('named DHCP leases: while they live, never over a node', async (t) => {
  const lease = (name: string, ip: string, expiresAt: number) => ({ name, ip, expiresAt });
  const data = buildZoneData(input({ now: 1_000_000, leases: [lease('laptop', '198.18.0.120', 1_030_000), lease('old', '198.18.0.121', 999_000), lease('n001', '198.18.0.122', 2_000_000)] }));
  const zone = new ZoneIndex(data);
  t.match(ask(zone, 'laptop.lab.test', 'A')!.answers, ['laptop.lab.test A "198.18.0.120"']);
  t.equal(data.records.find((r) => r.name === 'laptop.lab.test')!.ttl, 30, 'TTL no longer than the lease');
  t.same(ask(zone, '120.0.18.198.in-addr.arpa', 'PTR')!.answers, ['120.0.18.198.in-addr.arpa PTR "laptop.lab.test"']);
  t.equal(ask(zone, 'old.lab.test', 'A')!.rcode, 'NXDOMAIN', 'an expired lease publishes nothing');
  t.same(ask(zone, 'n001.lab.test', 'A')!.answers, ['n001.lab.test A "198.18.0.11"'], 'a client cannot take a node\'s name');
  t.equal(leaseLabel('Laptop.home.example'), 'laptop');
  t.equal(leaseLabel('bad_name'), undefined);
  t.equal(leaseLabel('-x'), undefined);
});

t.test('the zone source follows the model and the leases', async (t) => {
  const config = parseConfig(CONFIG, '<test>');
  const store = new MemoryStore();
  const model = new ClusterModel(config, store);
  let now = Date.now();
  const source = new ZoneSource(model, store, config, silentLogger, () => now);
  t.teardown(() => source.close());
  const pushed: number[] = [];
  source.onUpdate((d) => pushed.push(d.soa.serial));
  const first = source.index();
  t.equal(ask(first, 'fresh.lab.test', 'A')!.rcode, 'NXDOMAIN');

  await model.addHost({ name: 'fresh', ip: '198.18.0.60' });
  t.same(ask(source.index(), 'fresh.lab.test', 'A')!.answers, ['fresh.lab.test A "198.18.0.60"'], 'visible to the next query, no restart');
  t.ok(source.index().serial > first.serial, 'a new serial');
  await model.addSrv({ name: '_http._tcp', target: 'fresh', port: 80 });
  t.same(ask(source.index(), '_http._tcp.lab.test', 'SRV')!.additional, ['fresh.lab.test A "198.18.0.60"']);
  await model.removeHost('fresh');
  t.equal(ask(source.index(), 'fresh.lab.test', 'A')!.rcode, 'NXDOMAIN');

  const bound: LeaseRecord = { ip: '198.18.0.130', mac: '52:54:00:00:01:30', hostname: 'wifi', subnet: '198.18.0.0/24', state: 'bound', expiresAt: now + 300, updatedAt: now };
  await store.put('leases', bound.ip, bound);
  t.same(ask(source.index(), 'wifi.lab.test', 'A')!.answers, ['wifi.lab.test A "198.18.0.130"'], 'a named lease resolves');
  const before = source.index();
  await store.put('leases', bound.ip, { ...bound, expiresAt: now + 600 });
  t.equal(source.index(), before, 'a renewal that changes nothing but the end does not rebuild');
  await store.put('leases', '198.18.0.131', { ...bound, ip: '198.18.0.131', hostname: undefined });
  t.equal(source.index(), before, 'nor does a lease without a name');

  // The lease runs out with no store change: the timer removes the name.
  now += 700;
  await new Promise((r) => setTimeout(r, 700));
  t.equal(ask(source.index(), 'wifi.lab.test', 'A')!.rcode, 'NXDOMAIN', 'gone when the lease ended');
  await store.put('leases', bound.ip, { ...bound, expiresAt: now + 10_000 });
  t.equal(ask(source.index(), 'wifi.lab.test', 'A')!.rcode, 'NOERROR');
  await store.put('leases', bound.ip, { ...bound, state: 'released', expiresAt: now + 10_000 });
  t.equal(ask(source.index(), 'wifi.lab.test', 'A')!.rcode, 'NXDOMAIN', 'released: gone at once');
  await new Promise((r) => setImmediate(r));
  t.ok(pushed.length >= 1, 'workers are sent the new data');
});

t.test('the forwarding cache ages TTLs and honours negative TTLs', async (t) => {
  let now = 1_000_000;
  const cache = new AnswerCache({ size: 2, maxTtl: 120, maxNegativeTtl: 30 }, () => now);
  const fromTool = (hex: string) => Buffer.from(hex, 'hex');
  // An upstream's answer for ext.example.org A, TTL 300, built with dns-packet as any resolver would send it.
  const upstream = (name: string, rcode: 'NOERROR' | 'NXDOMAIN', ttl: number) => packet.encode({
    id: 99, type: 'response', flags: rcode === 'NXDOMAIN' ? 3 : 0,
    questions: [{ name, type: 'A' }],
    answers: rcode === 'NOERROR' ? [{ name, type: 'A', ttl, data: '192.0.2.7' }] : [],
    authorities: rcode === 'NXDOMAIN' ? [{ name: 'example.org', type: 'SOA', ttl, data: { mname: 'ns.example.org', rname: 'h.example.org', serial: 1, refresh: 1, retry: 1, expire: 1, minimum: 600 } }] : [],
  });
  const raw = encodeQuery(5, 'Ext.Example.Org', RecordType.A, Flag.RD);
  const q = decodeQuery(raw);
  const res = upstream('ext.example.org', 'NOERROR', 300);
  cache.put(q, res, scanResponse(res));
  now += 10_500;
  const hit = packet.decode(cache.get(raw, q, 512)!);
  t.match(hit, { id: 5, flag_rd: true, questions: [{ name: 'Ext.Example.Org' }], answers: [{ ttl: 110 }] }, 'the client\'s id and letter case; TTL capped at 120 and aged 10 s');
  t.equal(cache.get(raw, q, 20), undefined, 'too large for the client: a miss');
  now += 110_000;
  t.equal(cache.get(raw, q, 512), undefined, 'expired');

  const nxRaw = encodeQuery(6, 'nope.example.org', RecordType.A, Flag.RD);
  const nxq = decodeQuery(nxRaw);
  const nx = upstream('nope.example.org', 'NXDOMAIN', 3600);
  cache.put(nxq, nx, scanResponse(nx));
  now += 29_000;
  t.match(packet.decode(cache.get(nxRaw, nxq, 512)!), { rcode: 'NXDOMAIN', authorities: [{ ttl: 1 }] }, 'cached for min(SOA TTL, MINIMUM), capped at 30 s: 1 s left');
  now += 2000;
  t.equal(cache.get(nxRaw, nxq, 512), undefined);

  const servfail = fromTool(Buffer.from(res).toString('hex'));
  servfail[3] = (servfail[3]! & 0xf0) | Rcode.SERVFAIL;
  cache.put(q, servfail, scanResponse(servfail));
  t.equal(cache.get(raw, q, 512), undefined, 'SERVFAIL is not cached');
  const edns = decodeQuery(Buffer.from(vectorWithEdns(raw)));
  cache.put(q, res, scanResponse(res));
  t.equal(cache.get(vectorWithEdns(raw), edns, 1232), undefined, 'an EDNS query does not get a non-EDNS answer');
  for (const name of ['a.example.org', 'b.example.org']) {
    const r = encodeQuery(1, name, RecordType.A, 0);
    const resp = upstream(name, 'NOERROR', 60);
    cache.put(decodeQuery(r), resp, scanResponse(resp));
  }
  t.equal(cache.size, 2, 'the oldest entry goes when full');
  t.equal(cache.get(raw, q, 512), undefined);
});

/** The same query with an OPT record appended (EDNS, 1232 bytes). */
function vectorWithEdns(raw: Buffer): Buffer {
  const out = Buffer.concat([raw, Buffer.from([0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0])]);
  out[11] = 1;
  return out;
}
