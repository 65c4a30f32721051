/** Cluster file validation: every error names the file, the line, the field and what is expected. */
import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/load.ts';

const valid = `
cluster: { domain: lab.test }
head: { address: 198.18.0.1 }
subnets:
  - network: 198.18.0.0/24
    interface: eth0
    pool: 198.18.0.100-198.18.0.150
    leaseTime: 2h
profiles:
  compute: { kernel: vmlinuz, initrd: initrd.img, loaders: { uefi-x64: snponly.efi } }
nodes:
  - { name: N001, macs: 52-54-00-00-00-01, ip: 198.18.0.11, profile: compute }
`;

function errorOf(text: string): string {
  try { parseConfig(text, 'cluster.yaml'); } catch (e) { if (e instanceof ConfigError) return e.message; throw e; }
  return '(no error)';
}

t.test('a valid file is normalised', async (t) => {
  const c = parseConfig(valid, 'cluster.yaml');
  t.equal(c.subnets[0]!.leaseTime, 7200, 'durations become seconds');
  t.same(c.subnets[0]!.pool, ['198.18.0.100', '198.18.0.150']);
  t.same(c.nodes[0]!.macs, ['52:54:00:00:00:01'], 'MACs canonical');
  t.equal(c.nodes[0]!.name, 'n001', 'names lower-cased');
  t.equal(c.profiles['compute']!.loaders['uefi-x64'], 'snponly.efi');
  t.equal(c.profiles['compute']!.loaders['uefi-x64-http'], 'snponly.efi', 'HTTP boot follows the UEFI loader');
  t.equal(c.profiles['compute']!.loaders['bios'], 'undionly.kpxe', 'unset loaders take the iPXE default');
  t.ok(c.profiles['default'], 'a default profile always exists');
});

const cases: Array<[string, string, RegExp]> = [
  ['bad MAC', valid.replace('52-54-00-00-00-01', '52:54:00:zz:00:01'), /cluster\.yaml:12 nodes\[0\]\.macs: expected a MAC address like 52:54:00:12:34:56/],
  ['missing head address', valid.replace('head: { address: 198.18.0.1 }', 'head: { name: h }'), /head\.address: is required/],
  ['typo in a field', valid.replace('leaseTime: 2h', 'leasetime: 2h'), /cluster\.yaml:8 subnets\[0\]: unknown field "leasetime"/],
  ['bad duration', valid.replace('leaseTime: 2h', 'leaseTime: 2 weeks'), /subnets\[0\]\.leaseTime: expected a duration like 3600, 90s, 10m, 12h or 7d/],
  ['node outside every subnet', valid.replace('ip: 198.18.0.11', 'ip: 198.19.0.11'), /nodes\[0\]\.ip: 198\.19\.0\.11 is in none of the subnets \(198\.18\.0\.0\/24\)/],
  ['node at the head address', valid.replace('ip: 198.18.0.11', 'ip: 198.18.0.1'), /nodes\[0\]\.ip: 198\.18\.0\.1 is a head's address/],
  ['node at the broadcast address', valid.replace('ip: 198.18.0.11', 'ip: 198.18.0.255'), /nodes\[0\]\.ip: 198\.18\.0\.255 is the broadcast address of 198\.18\.0\.0\/24/],
  ['node at the network address', valid.replace('ip: 198.18.0.11', 'ip: 198.18.0.0'), /nodes\[0\]\.ip: 198\.18\.0\.0 is the network address/],
  ['unknown profile', valid.replace('profile: compute }', 'profile: gpu }'), /nodes\[0\]\.profile: no profile named "gpu"; define it under profiles: or use one of: default, compute/],
  ['pool outside the subnet', valid.replace('198.18.0.100-198.18.0.150', '198.18.0.100-198.18.1.150'), /subnets\[0\]\.pool: the pool .* must lie inside 198\.18\.0\.0\/24/],
  ['pool reversed', valid.replace('198.18.0.100-198.18.0.150', '198.18.0.150-198.18.0.100'), /the pool starts after it ends/],
  ['host bits in a network', valid.replace('network: 198.18.0.0/24', 'network: 198.18.0.5/24'), /has host bits set; the network address is 198\.18\.0\.0\/24/],
  ['duplicate MAC', valid.replace('profile: compute }', 'profile: compute }\n  - { name: n002, macs: [52:54:00:00:00:01], ip: 198.18.0.12 }'), /nodes\[1\]\.macs\[0\]: MAC 52:54:00:00:00:01 already belongs to nodes\[0\]/],
  ['zero lease limit', `${valid}\ndhcp: { limits: { perPort: 0 } }\n`, /dhcp\.limits\.perPort: expected at least 1 lease \(leave the field out for no limit\)/],
  ['fractional lease limit', `${valid}\ndhcp: { limits: { perInterface: 2.5 } }\n`, /dhcp\.limits\.perInterface: expected a whole number of leases/],
  ['YAML syntax', 'head: [unclosed', /YAML syntax/],
];
for (const [name, text, expected] of cases) {
  t.test(name, async (t) => { t.match(errorOf(text), expected); });
}

const minimal = 'head: { address: 198.18.0.1 }\nsubnets: [{ network: 198.18.0.0/24 }]\n';

/** The defaults as the docs state them: docs/config.md, docs/dns.md, docs/ntp.md, docs/iscsi.md, docs/http.md. */
const documented = {
  cluster: { name: 'cluster', domain: 'cluster.local' },
  log: { level: 'info' },
  dhcp: { enabled: true, port: 67, clientPort: 68, bootServerPort: 4011, leaseTime: 12 * 3600, offerTime: 60, declineTime: 10 * 60, maxClockSkew: 2, authoritative: true, bootUnknown: true, limits: {} },
  dns: {
    enabled: true, address: '0.0.0.0', port: 53, ttl: 60, negativeTtl: 60, upstreams: [], upstreamTimeout: 2,
    cache: { size: 10000, maxTtl: 86400, maxNegativeTtl: 3600 }, allowRecursion: [], workers: 1, ednsUdpSize: 1232,
    tcpIdleTimeout: 10, tcpMessageTimeout: 5, tcpConnections: 512, tcpConnectionsPerClient: 16, aliases: [], txt: [],
  },
  ntp: {
    enabled: true, address: '0.0.0.0', port: 123, upstreams: [], pollInterval: 64, headPollInterval: 16,
    rateLimit: { enabled: true, rate: 1, burst: 16, leak: 2, clients: 65536 }, workers: 1,
  },
  iscsi: { enabled: true, backend: 'auto', port: 3260, devices: [], removeDisks: false, retry: 60, tgt: { controlPort: 0 } },
  tftp: { enabled: true, address: '0.0.0.0', port: 69, maxBlockSize: 1468, maxWindowSize: 64, maxTransfers: 2000, maxTransfersPerClient: 8, timeout: 1, retries: 5, deadline: 600, cacheMiB: 256 },
  http: { enabled: true, address: '0.0.0.0', port: 80, readOpenTo: 'cluster', unknownTemplate: 'discovery.ipxe', bodyLimit: 65536, headersTimeout: 10, requestTimeout: 30, maxConnections: 4096, maxConnectionsPerClient: 128 },
} as const;

t.test('an empty section, or none, yields the documented defaults', async (t) => {
  const absent = parseConfig(minimal, 'cluster.yaml');
  const empty = parseConfig(minimal + Object.keys(documented).map((s) => `${s}: {}\n`).join(''), 'cluster.yaml');
  for (const [section, defaults] of Object.entries(documented)) {
    t.strictSame(absent[section as keyof typeof documented], defaults, `${section}: left out`);
    t.strictSame(empty[section as keyof typeof documented], defaults, `${section}: {}`);
  }
  const nested = parseConfig(minimal + 'dns: { cache: {} }\nntp: { rateLimit: {} }\niscsi: { tgt: {} }\n', 'cluster.yaml');
  t.strictSame(nested.dns.cache, documented.dns.cache, 'dns.cache: {}');
  t.strictSame(nested.ntp.rateLimit, documented.ntp.rateLimit, 'ntp.rateLimit: {}');
  t.strictSame(nested.iscsi.tgt, documented.iscsi.tgt, 'iscsi.tgt: {}');
});

t.test('two cluster files never share a default list or object', async (t) => {
  const a = parseConfig(minimal, 'a.yaml');
  a.dns.upstreams.push({ address: '198.18.0.53', port: 53 });
  a.ntp.upstreams.push({ address: '198.18.0.123', port: 123 });
  a.ntp.rateLimit.burst = 1;
  const b = parseConfig(minimal, 'b.yaml');
  t.same(b.dns.upstreams, [], 'dns.upstreams of the second file');
  t.same(b.ntp.upstreams, [], 'ntp.upstreams of the second file');
  t.equal(b.ntp.rateLimit.burst, 16, 'ntp.rateLimit of the second file');
});

t.test('upstream servers, DNS and NTP alike: an address with an optional port, or a message naming the field', async (t) => {
  const c = parseConfig(minimal + 'dns: { upstreams: [198.18.0.53, "198.18.0.54:5353"] }\nntp: { upstreams: [198.18.0.123] }\n', 'cluster.yaml');
  t.same(c.dns.upstreams, [{ address: '198.18.0.53', port: 53 }, { address: '198.18.0.54', port: 5353 }]);
  t.same(c.ntp.upstreams, [{ address: '198.18.0.123', port: 123 }]);
  t.match(errorOf(minimal + 'dns: { upstreams: ["198.18.0.53:0"] }\n'), /dns\.upstreams\[0\]: expected an upstream resolver like 198\.18\.0\.53 or 198\.18\.0\.53:5353; got "198\.18\.0\.53:0"/);
  t.match(errorOf(minimal + 'ntp: { upstreams: [time.example.org] }\n'), /ntp\.upstreams\[0\]: expected an NTP server as an IPv4 address, optionally with a port, like 192\.0\.2\.10 or 192\.0\.2\.10:123; got "time\.example\.org"/);
});

const heads = `${valid}
heads:
  - { name: head, address: 198.18.0.1 }
  - { name: head2, address: 198.18.0.2 }
`;

t.test('store: embedded by default; etcd with endpoints or with the heads as members', async (t) => {
  t.same(parseConfig(valid, 'cluster.yaml').store, { kind: 'embedded' });
  t.same(parseConfig(`${heads}store: { kind: etcd }\n`, 'cluster.yaml').store, { kind: 'etcd' }, 'no endpoints: a member per head');
  const c = parseConfig(`${valid}store: { kind: etcd, endpoints: [http://198.18.0.9:2379/, 'https://etcd1:2379'] }\n`, 'cluster.yaml');
  t.same(c.store.endpoints, ['http://198.18.0.9:2379', 'https://etcd1:2379'], 'endpoints normalised, host names allowed');
});

const storeCases: Array<[string, string, RegExp]> = [
  ['unknown store kind', `${valid}store: { kind: consul }\n`, /cluster\.yaml:13 store\.kind: expected embedded \(one head, the journal in state:\) or etcd/],
  ['endpoint without a port', `${valid}store: { kind: etcd, endpoints: [http://198.18.0.9] }\n`, /store\.endpoints\[0\]: expected an etcd client URL like http:\/\/198\.18\.0\.1:2379 \(scheme, host and port/],
  ['endpoint not a URL', `${valid}store: { kind: etcd, endpoints: [198.18.0.9:2379] }\n`, /store\.endpoints\[0\]: expected an etcd client URL/],
  ['endpoints for the embedded store', `${valid}store: { endpoints: [http://198.18.0.9:2379] }\n`, /store\.endpoints: endpoints are for kind: etcd; set store\.kind to etcd/],
  ['etcd members without heads', `${valid}store: { kind: etcd }\n`, /cluster\.yaml:13 store: kind etcd without endpoints runs an etcd member on every head of heads:, and heads: is empty/],
  ['typo in store', `${heads}store: { kind: etcd, endpoint: [http://198.18.0.9:2379] }\n`, /store: unknown field "endpoint"/],
  ['peer TLS for an etcd run elsewhere', `${valid}store: { kind: etcd, endpoints: [http://198.18.0.9:2379], tls: { ca: ca.crt, cert: h.crt, key: h.key } }\n`, /store\.tls: tls sets TLS between the etcd members bootherd runs \(kind: etcd, no endpoints\)/],
  ['peer TLS without its key', `${heads}store: { kind: etcd, tls: { ca: ca.crt, cert: h.crt } }\n`, /store\.tls\.key: is required \(expected the path of the private key of this head's peer certificate/],
  ['this head not in heads', heads.replace('name: head,', 'name: other,'), /heads: this head \(head\.name head\) is not listed/],
  ['duplicate head address', heads.replace('198.18.0.2 }', '198.18.0.1 }'), /cluster\.yaml:\d+ heads\[1\]\.address: address 198\.18\.0\.1 is already heads\[0\]/],
];
for (const [name, text, expected] of storeCases) {
  t.test(name, async (t) => { t.match(errorOf(text), expected); });
}

t.test('store.tls: the member gets https peer URLs and the --peer-* flags, files relative to the cluster file', async (t) => {
  const { etcdPlanOf } = await import('../../src/store/etcd-plan.ts');
  const { etcdArgs } = await import('../../src/store/etcd-member.ts');
  const { sharedFieldDigests, differingFields } = await import('../../src/config/shared.ts');
  const c = parseConfig(`${heads}store: { kind: etcd, tls: { ca: /etc/bootherd/ca.crt, cert: tls/head.crt, key: tls/head.key } }\n`, '/etc/bootherd/cluster.yaml');
  const member = etcdPlanOf(c)!.member!;
  t.same(member.peerTls, { ca: '/etc/bootherd/ca.crt', cert: '/etc/bootherd/tls/head.crt', key: '/etc/bootherd/tls/head.key' });
  const args = etcdArgs({ ...member, log: undefined as never }).join(' ');
  t.match(args, '--listen-peer-urls https://198.18.0.1:52380 --initial-advertise-peer-urls https://198.18.0.1:52380');
  t.match(args, '--initial-cluster head=https://198.18.0.1:52380,head2=https://198.18.0.2:52380');
  t.match(args, '--peer-trusted-ca-file /etc/bootherd/ca.crt --peer-cert-file /etc/bootherd/tls/head.crt --peer-key-file /etc/bootherd/tls/head.key --peer-client-cert-auth');
  t.match(args, '--listen-client-urls http://198.18.0.1:2379', 'the client port stays plain HTTP');
  const plain = etcdArgs({ ...etcdPlanOf(parseConfig(`${heads}store: { kind: etcd }\n`, 'c.yaml'))!.member!, log: undefined as never }).join(' ');
  t.notMatch(plain, /https|--peer-/, 'without tls: plain peers, no TLS flags');
  const other = parseConfig(`${heads}store: { kind: etcd, tls: { ca: /etc/bootherd/ca.crt, cert: tls/head2.crt, key: tls/head2.key } }\n`, '/etc/bootherd/cluster.yaml');
  t.same(differingFields(sharedFieldDigests(c), sharedFieldDigests(other)), [], 'each head\'s own certificate files do not make the files differ');
  t.same(differingFields(sharedFieldDigests(c), sharedFieldDigests(parseConfig(`${heads}store: { kind: etcd }\n`, 'c.yaml'))), ['store'], 'but TLS on one head and not another does');
});

t.test('heads compare the shared fields of their files, not the head-specific ones', async (t) => {
  const { differingFields, sharedFieldDigests } = await import('../../src/config/shared.ts');
  const a = sharedFieldDigests(parseConfig(heads, 'a.yaml'));
  const own = heads.replace('head: { address: 198.18.0.1 }', 'head: { name: head2, address: 198.18.0.2 }').replace('interface: eth0', 'interface: enp1s0')
    .replace('leaseTime: 2h', 'leaseTime: 2h\nlog: { level: debug }\nstate: /srv/state\ndns: { port: 5353 }');
  t.same(differingFields(a, sharedFieldDigests(parseConfig(own, 'b.yaml'))), [], 'head, interface names, log, state and listeners may differ');
  const other = heads.replace('ip: 198.18.0.11', 'ip: 198.18.0.12').replace('leaseTime: 2h', 'leaseTime: 2h\ndhcp: { offerTime: 30s }');
  t.same(differingFields(a, sharedFieldDigests(parseConfig(other, 'c.yaml'))), ['dhcp', 'nodes'], 'a node and a DHCP setting are named');
});
