/**
 * Records the proxyDHCP exchange of real firmware as codec test vectors: a
 * `lab up --proxy` lab (dnsmasq as the site's server, bootherd in proxy mode)
 * boots a SeaBIOS+iPXE VM and an OVMF PXE VM while tcpdump runs in the head
 * namespace; the firmware's DISCOVERs and REQUESTs and bootherd's proxy
 * OFFERs (and any port 4011 traffic) are kept. Output:
 * test/vectors/dhcp/proxy.json. Run as root:
 *   node --import tsx scripts/record-proxy-vectors.ts
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { decode } from '../protocols/dhcp/codec.ts';
import { MESSAGE_TYPE_NAMES, Opt, readText, readUserClasses } from '../protocols/dhcp/options.ts';
import { labBoot } from '../src/lab/boot.ts';
import { Lab } from '../src/lab/netns.ts';
import { labDown, labUp } from '../src/lab/running.ts';
import { readPcapUdp } from '../test/helpers/pcap.ts';

const name = `bhprec${process.pid.toString(36)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
interface Vector { name: string; source: string; hex: string }
const vectors: Vector[] = [];
const FIRMWARE = {
  bios: 'QEMU 7.2 SeaBIOS + iPXE ROM (ipxe-qemu 1.0.0+git-20190125, e1000)',
  uefi: 'QEMU 7.2 OVMF 2022.11 native UEFI PXE (virtio-net, no option ROM)',
};

try {
  const state = await labUp({ name, nodes: 2, clients: 0, proxy: true });
  const lab = Lab.adopt(state.lab);
  for (const [firmware, node, nic] of [['bios', 'n001', 'e1000'], ['uefi', 'n002', 'virtio']] as const) {
    const pcap = path.join(state.dir, `${firmware}.pcap`);
    const dump = lab.spawn(state.lab.head.ns, 'tcpdump', ['-i', 'eth0', '-n', '--immediate-mode', '-U', '-s', '0', '-w', pcap, 'udp port 67 or udp port 68 or udp port 4011']);
    await sleep(800);
    const report = await labBoot(state, { firmware, node, nic, timeoutSeconds: 240 });
    if (!report.ok) throw new Error(`${firmware} boot failed: ${report.problems.join('; ')}`);
    dump.kill('SIGINT');
    await new Promise((r) => dump.once('exit', r));
    const seen = new Set<string>();
    for (const d of readPcapUdp(pcap)) {
      const m = decode(d.payload);
      const type = MESSAGE_TYPE_NAMES[m.options.get(Opt.MESSAGE_TYPE)?.[0] ?? 0] ?? '?';
      // Up to the kernel: the firmware's and iPXE's exchange, not the booted OS's.
      const vc = readText(m.options.get(Opt.VENDOR_CLASS)) ?? '';
      if (m.op === 1 && !vc.startsWith('PXEClient')) continue;
      const who = m.op === 2 ? (d.src === state.lab.head.address ? 'bootherd' : 'site') : readUserClasses(m.options.get(Opt.USER_CLASS)).includes('iPXE') || m.options.has(Opt.IPXE) ? 'ipxe' : 'firmware';
      const key = `${who}-${type}-${d.dstPort}`;
      if (seen.has(key) || who === 'site') continue;
      seen.add(key);
      const source = who === 'bootherd' ? `bootherd proxy mode, reply to ${FIRMWARE[firmware]}` : `${FIRMWARE[firmware]}${who === 'ipxe' && firmware === 'uefi' ? ', iPXE after the chainload' : ''}`;
      vectors.push({ name: `proxy-${firmware}-${who}-${type.toLowerCase()}${d.dstPort === 4011 || d.srcPort === 4011 ? '-4011' : ''}`, source, hex: d.payload.toString('hex') });
    }
  }
} finally {
  await labDown(name);
}
const out = path.resolve('test/vectors/dhcp/proxy.json');
writeFileSync(out, JSON.stringify({ recorded: new Date().toISOString().slice(0, 10), site: 'dnsmasq 2.90 (lab up --proxy)', vectors }, null, 1) + '\n');
console.log(`${vectors.length} vectors -> ${out}`);
for (const v of vectors) console.log(`  ${v.name}: ${v.source}, ${v.hex.length / 2} bytes`);
