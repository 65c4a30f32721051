/**
 * Boot benchmark: 1, 4 and 8 QEMU VMs (TCG) PXE-boot the lab's Linux at once,
 * from bootherd and from a reference stack serving the same files, and the
 * time from power-on to the init's "booted" is measured for each VM.
 *
 *   bootherd   `bootherd lab up` (DHCP, TFTP, DNS, NTP and HTTP in one process)
 *   reference  dnsmasq (DHCP, TFTP, DNS) + nginx-light (HTTP: the same iPXE
 *              scripts bootherd renders, as static files, the same kernel and
 *              initrd, a static "booted" call-back) + chronyd (NTP), each in
 *              its own lab namespaces
 *
 * Rounds alternate between the two stacks (1 VM from bootherd, 1 from the
 * reference, then 4, then 8), so that load from elsewhere on the machine hits
 * both alike. TCG is slow and 8 VMs share the machine's cores: the figures are
 * for comparing versions and stacks on one machine, not a boot time to quote.
 * Every boot is bounded (--timeout, default 600 s), every VM killed by PID.
 *
 *   node --import tsx bench/boot/run.ts [--vms 1,4,8] [--firmware bios|uefi] [--timeout 600]
 *   npm run bench:boot
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderNodeScript } from '../../src/boot/ipxe-script.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import { labClusterFile, labNode, LAB_DOMAIN, LAB_HEAD_ADDRESS, LAB_INITRD, LAB_KERNEL, LAB_POOL, LAB_SRV } from '../../src/lab/cluster.ts';
import type { VmStage } from '../../src/lab/console.ts';
import { labImage } from '../../src/lab/image.ts';
import { Lab } from '../../src/lab/netns.ts';
import { labDown, labUp, type LabState } from '../../src/lab/running.ts';
import { LabVm, usesFirmwarePxe, type VmFirmware } from '../../src/lab/vm.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { writeNginxConfig } from '../lib/reference-servers.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LAB_NAME = 'benchboot';
const REF_PREFIX = 'bootherd-benchref';
const HTTP_BASE = `http://${LAB_HEAD_ADDRESS}`;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const vmCounts = arg('vms', '1,4,8').split(',').map(Number);
const firmware = arg('firmware', 'bios') as VmFirmware;
const timeoutS = Number(arg('timeout', '600'));
const maxVms = Math.max(...vmCounts);
const nic = firmware === 'uefi' ? 'virtio' : 'e1000';

interface VmResult {
  readonly node: string;
  /** Seconds from power-on to each stage the VM reached. */
  readonly stages: Partial<Record<VmStage, number>>;
  readonly booted: number | undefined;
  /** Init checks that failed (the reference may lack something bootherd does). */
  readonly failed: readonly string[];
}

interface Round {
  readonly vms: number;
  readonly server: 'bootherd' | 'reference';
  readonly wallS: number;
  readonly results: readonly VmResult[];
}

/** Boots n VMs at once on a lab's bridge; each VM's stages, measured from its own power-on. */
async function bootAll(lab: Lab, n: number, dir: string, tag: string): Promise<VmResult[]> {
  const nodes = Array.from({ length: n }, (_, i) => labNode(i));
  const vms: LabVm[] = [];
  try {
    for (const node of nodes) {
      const tap = `vm${node.mac.replace(/:/g, '').slice(-8)}`;
      lab.removeTap(tap);
      lab.addTap(tap);
      vms.push(new LabVm(lab, { mac: node.mac, tap, firmware, nic }, path.join(dir, `console-${tag}-${n}-${node.name}.log`), { kernel: LAB_KERNEL, initrds: [LAB_INITRD] }));
    }
    await Promise.all(vms.map((vm) => vm.waitFor(() => vm.console.result !== undefined, timeoutS)));
  } finally {
    await Promise.all(vms.map((vm) => vm.kill()));
    for (const node of nodes) lab.removeTap(`vm${node.mac.replace(/:/g, '').slice(-8)}`);
  }
  return vms.map((vm, i) => {
    const stages: Partial<Record<VmStage, number>> = {};
    for (const e of vm.console.events) if (e.ok && stages[e.stage] === undefined) stages[e.stage] = e.at;
    return { node: nodes[i]!.name, stages, booted: stages.booted, failed: vm.console.result?.failed ?? ['(no result)'] };
  });
}

/** The reference stack in namespaces of its own, serving what bootherd serves. */
async function startReference(dir: string, imageDir: string): Promise<{ lab: Lab; stop: () => void }> {
  const lab = Lab.create({ prefix: REF_PREFIX });
  const procs: ChildProcess[] = [];
  const start = (cmd: string, args: string[]) => {
    const p = lab.spawn(lab.head.ns, cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    p.once('exit', (code) => { if (code) process.stderr.write(`${cmd} exited with ${code}: ${err}\n`); });
    procs.push(p);
  };
  const nodes = Array.from({ length: maxVms }, (_, i) => labNode(i));
  // The same scripts bootherd serves, rendered by bootherd's own renderer from the lab cluster file.
  const config = parseConfig(labClusterFile({ stateDir: path.join(dir, 'unused'), filesDir: imageDir, nodes: maxVms }), '<bench>');
  const model = new ClusterModel(config, new MemoryStore());
  const www = path.join(dir, 'www');
  mkdirSync(path.join(www, 'boot'), { recursive: true });
  symlinkSync(imageDir, path.join(www, 'files'));
  for (const n of nodes) {
    const dashed = n.mac.replace(/:/g, '-');
    writeFileSync(path.join(www, 'boot', `${dashed}.ipxe`), renderNodeScript(model, n.mac, HTTP_BASE));
    mkdirSync(path.join(www, 'boot', dashed), { recursive: true });
    writeFileSync(path.join(www, 'boot', dashed, 'booted'), `ok ${n.name}\n`);
  }

  const dm = path.join(dir, 'dnsmasq.conf');
  writeFileSync(dm, [
    'no-resolv', 'no-hosts', 'bind-interfaces', 'interface=eth0', `listen-address=${LAB_HEAD_ADDRESS}`,
    `domain=${LAB_DOMAIN}`, `local=/${LAB_DOMAIN}/`,
    `dhcp-range=${LAB_POOL[0]},${LAB_POOL[1]},255.255.255.0,1h`, 'dhcp-authoritative',
    `dhcp-option=option:dns-server,${LAB_HEAD_ADDRESS}`, `dhcp-option=option:ntp-server,${LAB_HEAD_ADDRESS}`,
    `host-record=head.${LAB_DOMAIN},${LAB_HEAD_ADDRESS}`,
    `srv-host=${LAB_SRV.name}.${LAB_DOMAIN},${LAB_SRV.target},${LAB_SRV.port},0,0`,
    'dhcp-userclass=set:ipxe,iPXE',
    'dhcp-match=set:efi64,option:client-arch,7', 'dhcp-match=set:efi64,option:client-arch,9',
    `enable-tftp`, `tftp-root=${path.join(ROOT, 'boot-assets/ipxe')}`,
    'dhcp-boot=tag:efi64,tag:!ipxe,ipxe.efi', 'dhcp-boot=tag:!efi64,tag:!ipxe,undionly.kpxe',
    ...nodes.flatMap((n) => [
      `dhcp-host=${n.mac},${n.ip},${n.name},set:${n.name}`,
      `host-record=${n.name}.${LAB_DOMAIN},${n.ip}`,
      `dhcp-boot=tag:ipxe,tag:${n.name},${HTTP_BASE}/boot/${n.mac.replace(/:/g, '-')}.ipxe`,
    ]),
    '',
  ].join('\n'));
  start('dnsmasq', ['--keep-in-foreground', '--conf-file=' + dm, '--pid-file=' + path.join(dir, 'dnsmasq.pid'), '--log-facility=-', '--user=root', '--group=root']);

  const ngx = path.join(dir, 'nginx');
  const ngxConf = writeNginxConfig({ dir: ngx, listen: `${LAB_HEAD_ADDRESS}:80`, site: `root ${www};`, http: '  default_type text/plain;' });
  start('nginx', ['-p', ngx, '-c', ngxConf]);

  if (existsSync('/usr/sbin/chronyd')) {
    const conf = path.join(dir, 'chrony.conf');
    writeFileSync(conf, `local stratum 10\nallow all\nport 123\ncmdport 0\npidfile ${dir}/chronyd.pid\ndriftfile ${dir}/chrony.drift\n`);
    start('chronyd', ['-f', conf, '-x', '-d']);
  } else {
    process.stderr.write('chronyd is missing (Debian package chrony): the reference serves no NTP, and its VMs\' ntp check fails\n');
  }
  await new Promise((r) => setTimeout(r, 1500));
  return { lab, stop: () => lab.destroy() };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
}

function printTable(rounds: Round[]): void {
  const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
  const stage = (r: Round, s: VmStage) => median(r.results.map((v) => v.stages[s]).filter((x): x is number => x !== undefined));
  const rows: string[][] = [['VMs', 'server', 'booted/all', 'ipxe-script p50 s', 'linux p50 s', 'booted min s', 'booted p50 s', 'booted max s', 'wall s', 'p50 vs reference', 'init checks failed']];
  for (const r of rounds) {
    const booted = r.results.map((v) => v.booted).filter((x): x is number => x !== undefined);
    const ref = rounds.find((x) => x.server === 'reference' && x.vms === r.vms);
    const refBooted = ref ? median(ref.results.map((v) => v.booted).filter((x): x is number => x !== undefined)) : NaN;
    const failed = [...new Set(r.results.flatMap((v) => v.failed))].join(' ') || '-';
    rows.push([String(r.vms), r.server, `${booted.length}/${r.results.length}`, fmt(stage(r, 'ipxe-script')), fmt(stage(r, 'linux')),
      fmt(Math.min(...booted)), fmt(median(booted)), fmt(Math.max(...booted)), fmt(r.wallS),
      r.server === 'reference' ? '1.00x' : Number.isFinite(refBooted) ? `${(median(booted) / refBooted).toFixed(2)}x` : '-', failed]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write([line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n') + '\n');
  process.stdout.write(`(${firmware} firmware, ${nic} NIC, TCG, ${os.cpus().length} cores; seconds from each VM's power-on; a ratio < 1 favours bootherd)\n`);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root: the bench creates network namespaces and taps');
  const image = labImage();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-bench-boot-'));
  let state: LabState | undefined;
  let ref: { lab: Lab; stop: () => void } | undefined;
  const cleanup = () => {
    ref?.stop();
    ref = undefined;
  };
  process.once('SIGINT', () => { cleanup(); void labDown(LAB_NAME).finally(() => process.exit(130)); });
  try {
    state = await labUp({ name: LAB_NAME, nodes: maxVms, clients: 0, say: (s) => process.stderr.write(`${s}\n`) });
    ref = await startReference(dir, image.dir);
    if (usesFirmwarePxe({ firmware, nic })) process.stderr.write('UEFI: OVMF loads ipxe.efi by TFTP from both stacks\n');
    const rounds: Round[] = [];
    const labs = { bootherd: Lab.adopt(state.lab), reference: ref.lab };
    for (const n of vmCounts) {
      for (const server of ['bootherd', 'reference'] as const) {
        process.stderr.write(`round: ${n} VM(s) from ${server}...\n`);
        const started = Date.now();
        const results = await bootAll(labs[server], n, dir, server);
        const round: Round = { vms: n, server, wallS: (Date.now() - started) / 1000, results };
        rounds.push(round);
        process.stderr.write(`  booted ${results.filter((r) => r.booted !== undefined).length}/${n} in ${round.wallS.toFixed(1)} s\n`);
      }
    }
    printTable(rounds);
    const resultsDir = path.join(ROOT, 'bench/results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, `boot-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ firmware, nic, cpus: os.cpus().length, rounds }, null, 2));
    rmSync(dir, { recursive: true, force: true });
  } finally {
    cleanup();
    await labDown(LAB_NAME);
  }
}

await main();
