/** The iscsi: section and root: of profiles and nodes: defaults, and errors that say what is expected. */
import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { namingOf } from '../../src/services/iscsi/names.ts';

const base = `
cluster: { domain: lab.test }
head: { address: 198.18.0.1 }
state: /var/lib/bootherd
subnets: [{ network: 198.18.0.0/24 }]
`;

function errorOf(text: string): string {
  try { parseConfig(text, '/etc/bootherd/cluster.yaml'); } catch (e) { if (e instanceof ConfigError) return e.message; throw e; }
  return '(no error)';
}

t.test('defaults: a cluster file without iscsi: stays valid, names follow the domain', async (t) => {
  const c = parseConfig(base, '/etc/bootherd/cluster.yaml');
  t.same(c.iscsi, { enabled: true, backend: 'auto', port: 3260, devices: [], removeDisks: false, retry: 60, tgt: { controlPort: 0 } });
  const n = namingOf(c);
  t.equal(n.targetPrefix, 'iqn.2024-01.test.lab.bootherd:');
  t.equal(n.initiatorPrefix, 'iqn.2024-01.test.lab:');
  t.same(n.portal, { address: '198.18.0.1', port: 3260 }, 'the portal is the head\'s address');
  t.equal(n.disksDir, '/var/lib/bootherd/iscsi', 'disks under the state directory');
});

t.test('root: on a profile and a node', async (t) => {
  const c = parseConfig(`${base}
iscsi: { backend: tgt, portal: 198.18.0.2, disks: disks, images: images, devices: ['/dev/vg0/*'], targetPrefix: 'iqn.2020-02.org.example.roots:', tgt: { controlPort: 12 } }
profiles:
  diskless: { kernel: vmlinuz, root: { kind: iscsi, image: images/rocky.img, size: 8G, boot: kernel } }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11, profile: diskless }
  - { name: n002, macs: [52:54:00:00:00:02], ip: 198.18.0.12, root: { kind: iscsi, disk: block, device: '/dev/vg0/root-{node}' } }
`, '/etc/bootherd/cluster.yaml');
  t.same(c.profiles['diskless']!.root, { kind: 'iscsi', image: 'images/rocky.img', disk: 'copy', size: 8 * 2 ** 30, boot: 'kernel' });
  t.same(c.nodes[1]!.root, { kind: 'iscsi', disk: 'block', device: '/dev/vg0/root-{node}', boot: 'sanboot' });
  const n = namingOf(c);
  t.equal(n.disksDir, '/etc/bootherd/disks', 'relative to the cluster file');
  t.equal(n.targetPrefix, 'iqn.2020-02.org.example.roots:');
  t.same(n.portal, { address: '198.18.0.2', port: 3260 });
});

const cases: Array<[string, string, RegExp]> = [
  ['copy without image', `${base}profiles: { p: { kernel: k, root: { kind: iscsi } } }`, /profiles\.p\.root\.image: disk: copy needs image: the golden image each node gets a copy of/],
  ['block without device', `${base}profiles: { p: { kernel: k, root: { kind: iscsi, disk: block } } }`, /profiles\.p\.root\.device: disk: block needs device: a block device path, \{node\} is replaced/],
  ['unknown kind', `${base}profiles: { p: { kernel: k, root: { kind: nfs, image: x } } }`, /profiles\.p\.root\.kind: expected kind: iscsi/],
  ['bad size', `${base}profiles: { p: { kernel: k, root: { kind: iscsi, image: x, size: lots } } }`, /root\.size: expected a size like 8G, 512M or a number of bytes, got "lots"/],
  ['a path with a space', `${base}profiles: { p: { kernel: k, root: { kind: iscsi, image: 'my disk.img' } } }`, /root\.image: a path for iSCSI must not contain spaces \(targetcli splits its arguments on them\)/],
  ['bad backend', `${base}iscsi: { backend: lio }`, /iscsi\.backend: expected backend: auto, targetcli or tgt/],
  ['bad IQN prefix', `${base}iscsi: { targetPrefix: 'iqn.example:' }`, /iscsi\.targetPrefix: expected an IQN prefix like iqn\.2024-01\.local\.cluster\.bootherd:/],
  ['tgtd control port out of range', `${base}iscsi: { tgt: { controlPort: 40000 } }`, /iscsi\.tgt\.controlPort: tgtd takes control ports 0-32767/],
  ['typo', `${base}iscsi: { portl: 198.18.0.1 }`, /iscsi: unknown field "portl"/],
];

for (const [name, text, want] of cases) {
  t.test(name, async (t) => { t.match(errorOf(text), want); });
}
