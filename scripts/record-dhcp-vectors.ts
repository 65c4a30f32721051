/**
 * Records real DHCP packets as codec test vectors: requests from ISC dhclient,
 * busybox udhcpc, QEMU's SeaBIOS+iPXE ROM and OVMF's UEFI PXE
 * client, and replies from dnsmasq, all captured with tcpdump on a lab bridge.
 * Output: test/vectors/dhcp/recorded.json. Run as root:
 *   node --import tsx scripts/record-dhcp-vectors.ts
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Lab } from '../src/lab/netns.ts';
import { readPcapUdp } from '../test/helpers/pcap.ts';
import { decode } from '../protocols/dhcp/codec.ts';
import { MESSAGE_TYPE_NAMES, Opt } from '../protocols/dhcp/options.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-vectors-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const lab = Lab.create({ prefix: 'bhrec', clients: 1, clientMac: () => '52:54:00:12:34:01' });

interface Vector { name: string; source: string; hex: string }
const vectors: Vector[] = [];

async function capture(name: string, source: string, run: () => Promise<void>, want: (type: string, fromServer: boolean) => boolean): Promise<void> {
  const pcap = path.join(dir, `${name}.pcap`);
  const dump = lab.spawn(lab.head.ns, 'tcpdump', ['-i', 'eth0', '--immediate-mode', '-U', '-s', '0', '-w', pcap, 'udp port 67 or udp port 68']);
  await sleep(800);
  try { await run(); } finally {
    await sleep(500);
    dump.kill('SIGINT');
    await new Promise((r) => dump.once('exit', r));
  }
  const seen = new Set<string>();
  for (const d of readPcapUdp(pcap)) {
    let type = '?';
    let fromServer = false;
    try {
      const m = decode(d.payload);
      type = MESSAGE_TYPE_NAMES[m.options.get(Opt.MESSAGE_TYPE)?.[0] ?? 0] ?? '?';
      fromServer = m.op === 2;
    } catch { continue; }
    const key = `${type}-${fromServer}`;
    if (seen.has(key) || !want(type, fromServer)) continue;
    seen.add(key);
    vectors.push({ name: `${name}-${type.toLowerCase()}`, source: `${source}${fromServer ? ' (reply from dnsmasq 2.90)' : ''}`, hex: d.payload.toString('hex') });
  }
}

function waitExit(p: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { p.kill('SIGKILL'); resolve(); }, ms);
    p.once('exit', () => { clearTimeout(t); resolve(); });
  });
}

try {
  const dnsmasq = lab.spawn(lab.head.ns, 'dnsmasq', ['--no-daemon', '--port=0', '--interface=eth0', '--bind-interfaces', '--dhcp-range=198.18.0.50,198.18.0.60,1h',
    `--dhcp-leasefile=${dir}/dnsmasq.leases`, '--dhcp-boot=undionly.kpxe', '--dhcp-option=option:ntp-server,198.18.0.1', '--domain=lab.test']);
  await sleep(500);
  const c = lab.clients[0]!;
  await capture('dhclient', 'ISC dhclient 4.4.3 (Debian 12)', async () => {
    lab.run(c.ns, 'dhclient', ['-1', '-lf', `${dir}/dhclient.leases`, '-pf', `${dir}/dhclient.pid`, '-sf', '/bin/true', 'eth0'], 20_000);
    lab.run(c.ns, 'dhclient', ['-r', '-lf', `${dir}/dhclient.leases`, '-pf', `${dir}/dhclient.pid`, '-sf', '/bin/true', 'eth0'], 20_000);
  }, () => true);
  lab.run(c.ns, 'ip', ['addr', 'flush', 'dev', 'eth0']);
  await capture('udhcpc', 'busybox 1.35 udhcpc (Debian 12)', async () => {
    lab.run(c.ns, 'udhcpc', ['-i', 'eth0', '-n', '-q', '-f', '-t', '3', '-T', '1', '-s', '/bin/true', '-x', 'hostname:vector-host'], 20_000);
  }, (_t, fromServer) => !fromServer);
  dnsmasq.kill('SIGKILL');

  // Firmware: QEMU 7.2 under TCG, no DHCP server answering; the first DISCOVER is what we want.
  lab.addTap('tapbios');
  await capture('ipxe-bios', 'QEMU 7.2 SeaBIOS + iPXE ROM (ipxe-qemu 1.0.0+git-20190125, e1000)', async () => {
    const vm = lab.spawn(lab.switchNs, 'qemu-system-x86_64', ['-nographic', '-m', '128', '-no-reboot', '-boot', 'n',
      '-netdev', 'tap,id=n0,ifname=tapbios,script=no,downscript=no', '-device', 'e1000,netdev=n0,mac=52:54:00:12:34:02']);
    await waitExit(vm, 25_000);
  }, (t, fromServer) => t === 'DISCOVER' && !fromServer);
  lab.addTap('tapuefi');
  await capture('uefi-pxe', 'QEMU 7.2 OVMF 2022.11 native UEFI PXE (virtio-net, no option ROM)', async () => {
    const vm = lab.spawn(lab.switchNs, 'qemu-system-x86_64', ['-nographic', '-m', '256', '-no-reboot', '-bios', '/usr/share/ovmf/OVMF.fd', '-boot', 'n',
      '-netdev', 'tap,id=n0,ifname=tapuefi,script=no,downscript=no', '-device', 'virtio-net-pci,netdev=n0,romfile=,mac=52:54:00:12:34:03']);
    await waitExit(vm, 60_000);
  }, (t, fromServer) => t === 'DISCOVER' && !fromServer);
} finally {
  lab.destroy();
}
const out = path.resolve('test/vectors/dhcp/recorded.json');
writeFileSync(out, JSON.stringify({ recorded: new Date().toISOString().slice(0, 10), vectors }, null, 1) + '\n');
console.log(`${vectors.length} vectors -> ${out}`);
for (const v of vectors) console.log(`  ${v.name}: ${v.source}, ${v.hex.length / 2} bytes`);
