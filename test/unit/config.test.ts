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
  ['unknown profile', valid.replace('profile: compute }', 'profile: gpu }'), /nodes\[0\]\.profile: no profile named "gpu"; define it under profiles: or use one of: default, compute/],
  ['pool outside the subnet', valid.replace('198.18.0.100-198.18.0.150', '198.18.0.100-198.18.1.150'), /subnets\[0\]\.pool: the pool .* must lie inside 198\.18\.0\.0\/24/],
  ['pool reversed', valid.replace('198.18.0.100-198.18.0.150', '198.18.0.150-198.18.0.100'), /the pool starts after it ends/],
  ['host bits in a network', valid.replace('network: 198.18.0.0/24', 'network: 198.18.0.5/24'), /has host bits set; the network address is 198\.18\.0\.0\/24/],
  ['duplicate MAC', valid.replace('profile: compute }', 'profile: compute }\n  - { name: n002, macs: [52:54:00:00:00:01], ip: 198.18.0.12 }'), /nodes\[1\]\.macs\[0\]: MAC 52:54:00:00:00:01 already belongs to nodes\[0\]/],
  ['YAML syntax', 'head: [unclosed', /YAML syntax/],
];
for (const [name, text, expected] of cases) {
  t.test(name, async (t) => { t.match(errorOf(text), expected); });
}

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
  ['this head not in heads', heads.replace('name: head,', 'name: other,'), /heads: this head \(head\.name head\) is not listed/],
  ['duplicate head address', heads.replace('198.18.0.2 }', '198.18.0.1 }'), /cluster\.yaml:\d+ heads\[1\]\.address: address 198\.18\.0\.1 is already heads\[0\]/],
];
for (const [name, text, expected] of storeCases) {
  t.test(name, async (t) => { t.match(errorOf(text), expected); });
}

t.test('heads compare the shared fields of their files, not the head-specific ones', async (t) => {
  const { differingFields, sharedFieldDigests } = await import('../../src/config/shared.ts');
  const a = sharedFieldDigests(parseConfig(heads, 'a.yaml'));
  const own = heads.replace('head: { address: 198.18.0.1 }', 'head: { name: head2, address: 198.18.0.2 }').replace('interface: eth0', 'interface: enp1s0')
    .replace('leaseTime: 2h', 'leaseTime: 2h\nlog: { level: debug }\nstate: /srv/state\ndns: { port: 5353 }');
  t.same(differingFields(a, sharedFieldDigests(parseConfig(own, 'b.yaml'))), [], 'head, interface names, log, state and listeners may differ');
  const other = heads.replace('ip: 198.18.0.11', 'ip: 198.18.0.12').replace('leaseTime: 2h', 'leaseTime: 2h\ndhcp: { offerTime: 30s }');
  t.same(differingFields(a, sharedFieldDigests(parseConfig(other, 'c.yaml'))), ['dhcp', 'nodes'], 'a node and a DHCP setting are named');
});
