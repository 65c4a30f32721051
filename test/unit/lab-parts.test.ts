/**
 * Lab mode's pure parts: the serial console reader on consoles recorded from
 * real boots (test/vectors/lab/README.md), QEMU's command line per firmware
 * and NIC, the lab cluster file, and the check of the head's boot timeline
 * against what the VM saw.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BootStage } from '../../src/cluster/types.ts';
import { parseConfig } from '../../src/config/load.ts';
import { checkHeadTimeline } from '../../src/lab/boot.ts';
import { labClusterFile, labHead, labNode, LAB_ISCSI_PROFILE, LAB_MAX_NODES } from '../../src/lab/cluster.ts';
import { ConsoleReader, renderLine, type VmEvent } from '../../src/lab/console.ts';
import { labDirOf, partitionRules, type LabHeadState } from '../../src/lab/running.ts';
import { differingFields, sharedFieldDigests } from '../../src/config/shared.ts';
import { qemuArgs, usesFirmwarePxe } from '../../src/lab/vm.ts';

const VECTORS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../vectors/lab');
const FILES = { kernel: 'vmlinuz', initrds: ['initrd.img'] };

/** Feeds a recorded console in uneven chunks (lines split across reads, as a pipe delivers them); time = bytes so far / 100. */
function replay(file: string): ConsoleReader {
  const text = readFileSync(path.join(VECTORS, file)).toString('latin1');
  const reader = new ConsoleReader(FILES);
  for (let i = 0, n = 1; i < text.length; i += n, n = (n * 7 + 3) % 97 + 1) reader.feed(text.slice(i, i + n), (i + n) / 100);
  reader.end(text.length / 100);
  return reader;
}

const stagesOf = (r: ConsoleReader) => r.events.map((e) => e.stage);

t.test('renderLine: what a terminal shows', async (t) => {
  t.equal(renderLine('Press Ctrl-B...' + '\b \b'.repeat(15) + 'net0: up'), 'net0: up', 'backspaces erase the prompt');
  t.equal(renderLine('progress 10%\rprogress 100%\r'), 'progress 100%', 'carriage return redraws the line');
  t.equal(renderLine('\x1b[1m\x1b[37m\x1b[40miPXE\x1b[0m ok\x1b[=3h\x1bc'), 'iPXE ok', 'escape sequences carry no text');
  t.equal(renderLine('abc   \r'), 'abc', 'trailing blanks go');
});

t.test('BIOS with e1000 (SeaBIOS, the NIC\'s iPXE ROM, the lab initrd): every stage, in order', async (t) => {
  const r = replay('console-bios-e1000.serial');
  t.same(stagesOf(r), ['ipxe', 'ipxe-dhcp', 'ipxe-script', 'kernel', 'initrd', 'linux', 'init', 'nic', 'dhcp', 'hostname', 'dns', 'dns-self', 'srv', 'ntp', 'booted']);
  const get = (s: VmEvent['stage']) => r.get(s)!;
  t.equal(get('ipxe-dhcp').detail, '198.18.0.11');
  t.equal(get('ipxe-script').detail, '52-54-00-b0-00-01.ipxe');
  t.equal(get('kernel').detail, 'http://198.18.0.1/files/vmlinuz');
  t.equal(get('linux').detail, '6.1.0-56-amd64');
  t.equal(get('nic').detail, 'e1000 52:54:00:b0:00:01');
  t.equal(get('hostname').detail, 'n001');
  t.equal(get('dns').detail, 'head.lab.test=198.18.0.1');
  t.equal(get('srv').detail, '_slurmctld._tcp.lab.test 0 0 6817 head.lab.test');
  t.match(get('ntp').detail, /^198\.18\.0\.1 offset=-?[\d.]+s /);
  t.equal(get('booted').detail, 'ok n001');
  t.same(r.result, { ok: true, failed: [], at: r.result!.at });
  const times = r.events.map((e) => e.at);
  t.same(times, [...times].sort((a, b) => a - b), 'times only grow');
});

t.test('a node whose root is on iSCSI: login and root stages between DHCP and the host name', async (t) => {
  const text = readFileSync(path.join(VECTORS, 'console-iscsi-bios-e1000.serial')).toString('latin1');
  const r = new ConsoleReader({ kernel: 'vmlinuz', initrds: ['initrd.img', 'iscsi.img'] });
  for (let i = 0, n = 1; i < text.length; i += n, n = (n * 5 + 3) % 89 + 1) r.feed(text.slice(i, i + n), (i + n) / 100);
  r.end(text.length / 100);
  t.same(stagesOf(r), ['ipxe', 'ipxe-dhcp', 'ipxe-script', 'kernel', 'initrd', 'linux', 'init', 'nic', 'dhcp', 'iscsi', 'root', 'hostname', 'dns', 'dns-self', 'srv', 'ntp', 'booted']);
  t.equal(r.get('initrd')!.detail, 'http://198.18.0.1/files/iscsi.img', 'initrd: when the last of the profile\'s initrds is in');
  t.equal(r.get('iscsi')!.detail, 'iqn.2024-01.test.lab.bootherd:n001 lun 1 /dev/sda from 198.18.0.1:3260 as iqn.2024-01.test.lab:n001');
  t.match(r.get('root')!.detail, /^\/ is \/dev\/sda ext2, iSCSI session iqn\.2024-01\.test\.lab\.bootherd:n001; \/etc\/bootherd-golden: bootherd lab golden image [0-9a-f]{16}$/);
  t.same(r.result, { ok: true, failed: [], at: r.result!.at });
});

t.test('a head without NTP: the init reports the failed stage and still boots', async (t) => {
  const r = replay('console-bios-e1000-no-ntp.serial');
  t.equal(r.get('ntp')!.ok, false);
  t.match(r.get('ntp')!.detail, /Connection refused/);
  t.same(r.result, { ok: false, failed: ['ntp'], at: r.result!.at });
  t.ok(r.get('booted')!.ok);
});

t.test('UEFI with virtio (OVMF\'s own PXE client, ipxe.efi by TFTP): the whole chain', async (t) => {
  const r = replay('console-uefi-virtio.serial');
  t.same(stagesOf(r), ['pxe-dhcp', 'pxe-loader', 'ipxe', 'ipxe-dhcp', 'ipxe-script', 'kernel', 'initrd', 'linux', 'init', 'nic', 'dhcp', 'hostname', 'dns', 'dns-self', 'srv', 'ntp', 'booted']);
  t.equal(r.get('pxe-dhcp')!.detail, '198.18.0.12', 'OVMF got the node\'s address');
  t.equal(r.get('ipxe-dhcp')!.detail, '198.18.0.12', 'and iPXE again');
  t.equal(r.get('nic')!.detail, 'virtio_net 52:54:00:b0:00:02');
  t.same(r.result, { ok: true, failed: [], at: r.result!.at });
});

t.test('UEFI with e1000 (OVMF runs the ROM\'s EFI iPXE): the same stages, EFI stub kernel', async (t) => {
  const r = replay('console-uefi-e1000.serial');
  t.same(stagesOf(r), ['ipxe', 'ipxe-dhcp', 'ipxe-script', 'kernel', 'initrd', 'linux', 'init', 'nic', 'dhcp', 'hostname', 'dns', 'dns-self', 'srv', 'ntp', 'booted']);
  t.equal(r.get('hostname')!.detail, 'n003');
  t.match(r.lines.map((l) => l.text).join('\n'), /EFI stub: Loaded initrd from command line option/, 'the kernel found its initrd by the initrd= name');
});

t.test('an unknown MAC: pool address and the discovery script', async (t) => {
  const r = replay('console-discovery-bios-e1000.serial');
  t.same(stagesOf(r), ['ipxe', 'ipxe-dhcp', 'ipxe-script', 'discovery']);
  t.equal(r.get('ipxe-dhcp')!.detail, '198.18.0.100');
  t.equal(r.get('discovery')!.detail, '52:54:00:ff:00:01');
  t.equal(r.result, undefined, 'no init ran');
});

t.test('failures are noted: init failures, iPXE errors, a panic', async (t) => {
  const r = new ConsoleReader(FILES);
  r.feed('BOOTHERD-STAGE dns fail head.lab.test: no servers could be reached\n', 1);
  r.feed('http://198.18.0.1/files/vmlinuz... Connection timed out (http://ipxe.org/4c0a6035)\n', 2);
  r.feed('Kernel panic - not syncing: No working init found.\n', 3);
  r.feed('BOOTHERD-RESULT fail dns srv', 4);
  r.end(5);
  t.same(r.events, [{ stage: 'dns', at: 1, ok: false, detail: 'head.lab.test: no servers could be reached' }]);
  t.equal(r.errors.length, 2);
  t.same(r.result, { ok: false, failed: ['dns', 'srv'], at: 5 }, 'a last line without newline counts at the end');
  t.notOk(r.has('kernel'), 'a failed download is not the kernel stage');
});

t.test('QEMU command line per firmware and NIC', async (t) => {
  const base = { mac: '52:54:00:b0:00:01', tap: 'vmb00001' };
  const bios = qemuArgs({ ...base, firmware: 'bios', nic: 'e1000' });
  t.ok(bios.includes('e1000,netdev=net0,mac=52:54:00:b0:00:01,bootindex=1'), 'BIOS: the NIC with its iPXE ROM');
  t.notOk(bios.includes('-bios'), 'SeaBIOS is QEMU\'s default');
  t.ok(bios.includes('pc,accel=tcg') && bios.includes('-no-reboot') && bios.includes('-nodefaults'));
  t.ok(bios.includes('tap,id=net0,ifname=vmb00001,script=no,downscript=no'));
  const uefi = qemuArgs({ ...base, firmware: 'uefi', nic: 'virtio', accel: 'kvm', memoryMiB: 512 });
  t.ok(uefi.includes('virtio-net-pci,netdev=net0,mac=52:54:00:b0:00:01,bootindex=1,romfile='), 'UEFI + virtio: no ROM, OVMF\'s own PXE');
  t.same(uefi.slice(uefi.indexOf('-bios'), uefi.indexOf('-bios') + 2), ['-bios', '/usr/share/ovmf/OVMF.fd']);
  t.ok(uefi.includes('pc,accel=kvm') && uefi.includes('512'));
  t.ok(qemuArgs({ ...base, firmware: 'uefi', nic: 'e1000' }).includes('e1000,netdev=net0,mac=52:54:00:b0:00:01,bootindex=1'), 'UEFI + e1000 keeps the ROM (OVMF has no e1000 driver)');
  t.same([usesFirmwarePxe({ firmware: 'uefi', nic: 'virtio' }), usesFirmwarePxe({ firmware: 'uefi', nic: 'e1000' }), usesFirmwarePxe({ firmware: 'bios', nic: 'virtio' })], [true, false, false]);
});

t.test('the lab cluster file is a valid cluster file', async (t) => {
  const c = parseConfig(labClusterFile({ stateDir: '/tmp/s', filesDir: '/tmp/f', nodes: 8 }), '<lab>');
  t.equal(c.nodes.length, 8);
  t.same(c.nodes[7], { name: 'n008', macs: ['52:54:00:b0:00:08'], ip: '198.18.0.18', profile: 'default' });
  t.same(labNode(88), { name: 'n089', mac: '52:54:00:b0:00:59', ip: '198.18.0.99' }, 'the last node stops below the pool');
  t.equal(c.profiles['default']!.kernel, 'vmlinuz');
  t.match(c.profiles['default']!.cmdline, /console=ttyS0/);
  t.same(c.srv, [{ name: '_slurmctld._tcp', target: 'head.lab.test', port: 6817, priority: 0, weight: 0 }]);
  t.equal(parseConfig(labClusterFile({ stateDir: '/s', filesDir: '/f', nodes: 0 }), '<lab>').nodes.length, 0);
  t.throws(() => labClusterFile({ stateDir: '/s', filesDir: '/f', nodes: LAB_MAX_NODES + 1 }), /0 to 89 nodes/);

  // lab up --iscsi: every node's root is a copy of the golden disk on the lab's tgtd, booted with the kernel.
  const i = parseConfig(labClusterFile({ stateDir: '/tmp/s', filesDir: '/tmp/f', nodes: 2, iscsi: { tgtControlPort: 4321 } }), '<lab>');
  t.same(i.nodes.map((n) => n.profile), [LAB_ISCSI_PROFILE, LAB_ISCSI_PROFILE]);
  const p = i.profiles[LAB_ISCSI_PROFILE]!;
  t.same(p.initrd, ['initrd.img', 'iscsi.img'], 'the second initrd brings iscsistart');
  t.same(p.root, { kind: 'iscsi', image: '/tmp/f/golden.img', disk: 'copy', boot: 'kernel' });
  t.equal(p.cmdline, c.profiles['default']!.cmdline);
  t.match(i.iscsi, { enabled: true, backend: 'tgt', tgt: { controlPort: 4321 } });
  t.equal(c.nodes[0]!.root, undefined);
  t.notOk(c.profiles[LAB_ISCSI_PROFILE], 'a lab without --iscsi has no iSCSI profile');
});

t.test('lab up --heads 3: a file per head, all three on etcd, agreeing on every shared field; head is every head\'s name', async (t) => {
  const files = [0, 1, 2].map((i) => parseConfig(labClusterFile({ stateDir: `/s/${i}`, filesDir: '/f', nodes: 2, heads: { self: i, count: 3 } }), '<lab>'));
  t.same(files.map((c) => c.head), [{ name: 'head1', address: '198.18.0.1' }, { name: 'head2', address: '198.18.0.2' }, { name: 'head3', address: '198.18.0.3' }]);
  for (const c of files) {
    t.same(c.heads, files.map((f) => f.head), `${c.head.name} lists every head`);
    t.same(c.store, { kind: 'etcd' }, `${c.head.name} runs its own etcd member`);
    t.same(c.hosts.map((h) => `${h.name}=${h.ip}`), ['head=198.18.0.1', 'head=198.18.0.2', 'head=198.18.0.3'], 'the name the init checks, over every head');
  }
  t.same(differingFields(sharedFieldDigests(files[0]!), sharedFieldDigests(files[2]!)), [], 'the heads\' files differ only where a head\'s may');
  t.same(labHead(0, 1), { name: 'head', address: '198.18.0.1' }, 'one head keeps its name');
  const one = parseConfig(labClusterFile({ stateDir: '/s', filesDir: '/f', nodes: 2 }), '<lab>');
  t.same([one.heads, one.store, one.hosts], [[], { kind: 'embedded' }, []], 'one head: no heads:, the embedded store, no hosts');
});

t.test('lab partition-head: drops etcd\'s ports to and from every other head, both ways, nothing else', async (t) => {
  const heads = ['198.18.0.1', '198.18.0.2', '198.18.0.3'];
  t.same(partitionRules(heads[2]!, heads), [
    ['-N', 'BOOTHERD-PARTITION'],
    ['-A', 'BOOTHERD-PARTITION', '-s', '198.18.0.1', '-p', 'tcp', '-m', 'multiport', '--ports', '2379,52380', '-j', 'DROP'],
    ['-A', 'BOOTHERD-PARTITION', '-d', '198.18.0.1', '-p', 'tcp', '-m', 'multiport', '--ports', '2379,52380', '-j', 'DROP'],
    ['-A', 'BOOTHERD-PARTITION', '-s', '198.18.0.2', '-p', 'tcp', '-m', 'multiport', '--ports', '2379,52380', '-j', 'DROP'],
    ['-A', 'BOOTHERD-PARTITION', '-d', '198.18.0.2', '-p', 'tcp', '-m', 'multiport', '--ports', '2379,52380', '-j', 'DROP'],
    ['-I', 'INPUT', '-j', 'BOOTHERD-PARTITION'],
    ['-I', 'OUTPUT', '-j', 'BOOTHERD-PARTITION'],
  ]);
});

t.test('lab names become namespace and directory names: letters, digits, hyphens', async (t) => {
  t.equal(labDirOf('lab'), '/run/bootherd-lab/lab');
  t.equal(labDirOf('bench-2'), '/run/bootherd-lab/bench-2');
  for (const bad of ['', '../x', 'a b', '-x', 'x'.repeat(32)]) t.throws(() => labDirOf(bad), /expected letters, digits and hyphens/, JSON.stringify(bad));
});

t.test('the head\'s timeline against the VM\'s console', async (t) => {
  const t0 = 1_000_000;
  const head = (stage: BootStage['stage'], s: number): BootStage => ({ stage, at: t0 + s * 1000 });
  const vm = (stage: VmEvent['stage'], at: number): VmEvent => ({ stage, at, ok: true, detail: '' });
  const vmEvents = [vm('ipxe-dhcp', 19), vm('ipxe-script', 19.3), vm('kernel', 19.7), vm('initrd', 19.8), vm('linux', 27.5), vm('init', 31), vm('booted', 44.2)];
  const good = [head('dhcp-offer', 2.7), head('dhcp-offer', 3.8), head('dhcp-ack', 5.8), head('ipxe-script', 19.2), head('kernel', 19.6), head('initrd', 19.8), head('booted', 44.1)];
  t.same(checkHeadTimeline(good, t0, vmEvents, false), [], 'a real BIOS boot agrees');
  t.match(checkHeadTimeline(good, t0, vmEvents, true), ['head: the API timeline has no tftp-loader stage for this boot'], 'UEFI PXE needs the TFTP loader');
  const proxied = good.filter((s) => s.stage !== 'dhcp-ack');
  t.same(checkHeadTimeline(proxied, t0, vmEvents, false, true), [], 'beside a site DHCP server the ACK is the site\'s: no dhcp-ack needed');
  t.match(checkHeadTimeline(proxied, t0, vmEvents, false), ['head: the API timeline has no dhcp-ack stage for this boot'], 'in server mode it is');
  t.match(checkHeadTimeline(good.filter((s) => s.stage !== 'kernel'), t0, vmEvents, false), ['head: the API timeline has no kernel stage for this boot']);
  const late = good.map((s) => (s.stage === 'booted' ? head('booted', 45) : s));
  t.match(checkHeadTimeline(late, t0, vmEvents, false), [/booted at 45\.0 s is after the VM's booted at 44\.2 s/]);
  const raced = good.map((s) => (s.stage === 'kernel' ? head('kernel', 19.75) : s));
  t.same(checkHeadTimeline(raced, t0, vmEvents, false), [], 'the kernel stamped as its last byte left, just after iPXE printed "ok": a race, not a fault');
  const afterLinux = good.map((s) => (s.stage === 'initrd' ? head('initrd', 28) : s));
  t.match(checkHeadTimeline(afterLinux, t0, vmEvents, false), [/initrd at 28\.0 s is after the VM's linux at 27\.5 s/]);
  const early = good.map((s) => (s.stage === 'booted' ? head('booted', 20) : s));
  t.match(checkHeadTimeline(early, t0, vmEvents, false), ['head: booted was called before the VM\'s init started']);
  const swapped = good.map((s) => (s.stage === 'initrd' ? head('initrd', 19.5) : s));
  t.match(checkHeadTimeline(swapped, t0, vmEvents, false), ['head: initrd comes before kernel']);
});
