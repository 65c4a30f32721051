/**
 * `bootherd lab boot`: one VM PXE-boots from the lab's bootherd, and the boot
 * is checked end to end from both sides.
 *
 * The VM side is its serial console (src/lab/console.ts): firmware and iPXE
 * messages, then the lab initrd's /init, which reports DHCP, its host name,
 * DNS, the SRV record, NTP and the "booted" call-back. The head side is the
 * node's boot timeline from the API. A boot passes when every expected stage
 * is there and right (the address is the node's, the host name is the node's
 * name, DNS gives the head's address...), and the head's timeline agrees with
 * what the VM saw: each head stage happened after power-on and before the VM
 * reported the step it belongs to. These are orderings of cause and effect,
 * never durations: a slow machine boots slowly, not wrongly.
 *
 * A node whose root is on iSCSI (a lab made with `up --iscsi`: the API's
 * iSCSI status lists its export) must also show that its root came over
 * iSCSI: the init logged in to the node's target and found the LUN's disk,
 * and after switch_root `/` is that disk, holding the golden image's marker.
 *
 * A MAC that belongs to no node takes the discovery path instead: a pool
 * address and the unknown-MAC script, after which the VM is stopped.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { BootStage, BootTimeline, LeaseRecord } from '../cluster/types.ts';
import { ipToInt } from '../net/ipv4.ts';
import { normalizeMac } from '../net/mac.ts';
import type { IscsiExportStatus } from '../services/iscsi/service.ts';
import type { NodeView } from '../services/http/views.ts';
import { LAB_DOMAIN, LAB_GOLDEN_MARKER, LAB_HEAD_NAME, LAB_INITRD, LAB_ISCSI_INITRD, LAB_KERNEL, LAB_POOL, LAB_SRV, labNodeNamed } from './cluster.ts';
import type { VmEvent, VmStage } from './console.ts';
import { Lab } from './netns.ts';
import { headJson, type LabState } from './running.ts';
import { LabVm, usesFirmwarePxe, type VmAccel, type VmFirmware, type VmNic } from './vm.ts';

export interface LabBootOptions {
  readonly firmware: VmFirmware;
  /** Default: e1000 for BIOS, virtio for UEFI (the path where OVMF's own PXE client loads iPXE by TFTP). */
  readonly nic?: VmNic;
  /** A node of the lab (default n001 when no MAC is given). */
  readonly node?: string;
  /** Boot with this MAC; a MAC no node has takes the discovery path. */
  readonly mac?: string;
  readonly accel?: VmAccel;
  /** Bound on the whole boot, power-on to the init's last line. */
  readonly timeoutSeconds?: number;
  /** Where the serial console is saved; default <lab dir>/console-<node or mac>-<firmware>-<nic>.log. */
  readonly consoleFile?: string;
  /** Each VM-side stage as it happens (for live progress). */
  readonly onStage?: (e: VmEvent) => void;
  /** The address the node must come up with; default its reservation. On a proxy lab, the one the site's DHCP server gives it. */
  readonly expectIp?: string;
}

export interface TimelineEntry {
  /** Seconds since power-on. */
  readonly at: number;
  /** Who saw it: the VM's console, or the head (the node's boot timeline in the API). */
  readonly where: 'vm' | 'head';
  readonly stage: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface LabBootReport {
  readonly node: string | undefined;
  readonly mac: string;
  /** The node's address, or the pool address an unknown MAC got. */
  readonly ip: string | undefined;
  readonly firmware: VmFirmware;
  readonly nic: VmNic;
  readonly accel: VmAccel;
  /** What the boot is expected to end in. */
  readonly path: 'node' | 'discovery';
  /** The node's iSCSI root as the head exports it, when it has one. */
  readonly iscsi?: Pick<IscsiExportStatus, 'target' | 'initiator' | 'disk' | 'state'> & {
    /** What the golden image's /etc/bootherd-golden holds (the VM must read it from its root). */
    readonly marker: string;
  };
  readonly ok: boolean;
  /** Why it failed, one line each; empty when it passed. */
  readonly problems: readonly string[];
  /** Stages not checked because this bootherd does not run the service they need. */
  readonly skipped: ReadonlyArray<{ readonly stage: string; readonly why: string }>;
  readonly timeline: readonly TimelineEntry[];
  /** Seconds from power-on to the init's "booted" (node path) or the discovery script (discovery path). */
  readonly seconds: number | undefined;
  readonly poweredOnAt: string;
  readonly console: string;
  readonly consoleTail: readonly string[];
}

/** Which service each init check needs; a bootherd without it skips the check (the brief's services arrive one by one). */
const NEEDS: Partial<Record<VmStage, 'dns' | 'ntp'>> = { 'dns': 'dns', 'dns-self': 'dns', 'srv': 'dns', 'ntp': 'ntp' };

interface Target { readonly node: NodeView | undefined; readonly mac: string }

async function resolveTarget(state: LabState, opts: LabBootOptions): Promise<Target> {
  if (opts.mac) {
    const mac = normalizeMac(opts.mac);
    const nodes = await headJson<NodeView[]>(state, ['nodes', 'list']);
    const node = nodes.find((n) => n.macs.includes(mac));
    if (opts.node && node?.name !== opts.node) throw new Error(`MAC ${mac} is not node ${opts.node}'s${node ? ` (it is ${node.name}'s)` : ''}`);
    return { node, mac };
  }
  const node = await headJson<NodeView>(state, ['nodes', 'show', opts.node ?? 'n001']);
  return { node, mac: node.macs[0]! };
}

export async function labBoot(state: LabState, opts: LabBootOptions): Promise<LabBootReport> {
  const firmware = opts.firmware;
  const nic: VmNic = opts.nic ?? (firmware === 'uefi' ? 'virtio' : 'e1000');
  const accel: VmAccel = opts.accel ?? 'tcg';
  const timeout = opts.timeoutSeconds ?? 300;
  const target = await resolveTarget(state, opts);
  const node = target.node;
  const status = await headJson<{ services: Record<string, unknown> }>(state, ['status']);
  const services = new Set(Object.keys(status.services));
  const iscsiStatus = status.services['iscsi'] as { exports?: IscsiExportStatus[] } | undefined;
  const iscsiExport = node && iscsiStatus?.exports?.find((e) => e.node === node.name);
  const iscsi = iscsiExport && {
    target: iscsiExport.target, initiator: iscsiExport.initiator, disk: iscsiExport.disk, state: iscsiExport.state,
    marker: readFileSync(path.join(state.imageDir, LAB_GOLDEN_MARKER), 'utf8').trim(),
  };
  const firmwarePxe = usesFirmwarePxe({ firmware, nic });
  const consoleFile = opts.consoleFile ?? path.join(state.dir, `console-${node?.name ?? target.mac.replace(/:/g, '')}-${firmware}-${nic}.log`);
  mkdirSync(path.dirname(consoleFile), { recursive: true });

  const lab = Lab.adopt(state.lab);
  // One tap per MAC: a MAC boots once at a time, and VMs booting at once each get their own.
  const tap = `vm${target.mac.replace(/:/g, '').slice(-8)}`;
  lab.removeTap(tap);
  lab.addTap(tap);
  const problems: string[] = [];
  let vm: LabVm | undefined;
  try {
    // An iSCSI-root node's profile has the second initrd (src/lab/cluster.ts).
    const initrds = iscsi ? [LAB_INITRD, LAB_ISCSI_INITRD] : [LAB_INITRD];
    vm = new LabVm(lab, { mac: target.mac, tap, firmware, nic, accel }, consoleFile, { kernel: LAB_KERNEL, initrds }, opts.onStage);
    const c = vm.console;
    const reached = await vm.waitFor(() => (node ? c.result !== undefined : c.has('discovery')), timeout);
    if (!reached) {
      const last = c.events[c.events.length - 1];
      problems.push(vm.running()
        ? `no ${node ? 'result from the init' : 'discovery script'} within ${timeout} s (last stage: ${last ? `${last.stage} at ${last.at.toFixed(1)} s` : 'none'})`
        : `the VM stopped after ${vm.now().toFixed(1)} s before ${node ? 'the init reported' : 'the discovery script ran'} (last stage: ${last?.stage ?? 'none'})${vm.qemuErrors ? `; QEMU said: ${vm.qemuErrors}` : ''}`);
    }
    // The init powers the VM off after its last line; the discovery script would loop, so that VM is stopped (below).
    if (node && reached) await vm.waitFor(() => !vm!.running(), 30);
  } finally {
    if (vm) await vm.kill();
    lab.removeTap(tap);
  }

  const c = vm.console;
  const t0 = vm.poweredOnAt;
  const timeline: TimelineEntry[] = c.events.map((e) => ({ at: e.at, where: 'vm', stage: e.stage, ok: e.ok, detail: e.detail }));
  const skipped: Array<{ stage: string; why: string }> = [];
  const expectVm = (stage: VmStage, check?: (e: VmEvent) => string | undefined) => {
    const need = NEEDS[stage];
    if (need && !services.has(need)) {
      skipped.push({ stage, why: `this bootherd runs no ${need.toUpperCase()} service (not built yet, or ${need}.enabled is false)` });
      return;
    }
    const e = c.get(stage);
    if (!e) return problems.push(`VM: no ${stage} stage`);
    if (!e.ok) return problems.push(`VM: ${stage} failed: ${e.detail}`);
    const wrong = check?.(e);
    if (wrong) problems.push(`VM: ${stage}: ${wrong}`);
  };
  const equal = (want: string) => (e: VmEvent) => (e.detail === want ? undefined : `expected ${want}, got ${e.detail}`);
  const contains = (want: string) => (e: VmEvent) => (e.detail.includes(want) ? undefined : `expected ${JSON.stringify(want)} in ${JSON.stringify(e.detail)}`);
  const all = (...checks: Array<(e: VmEvent) => string | undefined>) => (e: VmEvent) => checks.map((c) => c(e)).find(Boolean);

  // The VM's clock comes from the host's through QEMU's RTC, and bootherd's NTP serves the host's clock:
  // a large offset means a wrong answer (an era or byte-order bug), not a slow machine.
  const ntpOffset = (e: VmEvent) => {
    const m = /offset=(-?[\d.]+)s/.exec(e.detail);
    if (!m) return `expected offset=<seconds> in ${JSON.stringify(e.detail)}`;
    return Math.abs(Number(m[1])) < 300 ? undefined : `the NTP time is ${m[1]} s off the VM's clock`;
  };

  // Beside a site DHCP server the node's address is the site's reservation (src/lab/site-dhcp.ts), which bootherd learns.
  const expected = opts.expectIp ?? (state.site && node ? labNodeNamed(node.name)?.ip : node?.ip ?? undefined);
  let ip = expected;
  let seconds: number | undefined;
  if (firmwarePxe) {
    expectVm('pxe-dhcp', expected ? equal(expected) : undefined);
    expectVm('pxe-loader');
    if (!services.has('tftp') && !c.has('pxe-loader')) problems.push('the firmware loads iPXE by TFTP, and this bootherd runs no TFTP service');
  }
  expectVm('ipxe');
  expectVm('ipxe-dhcp', expected ? equal(expected) : undefined);
  expectVm('ipxe-script');

  if (node) {
    expectVm('kernel');
    expectVm('initrd');
    expectVm('linux');
    expectVm('init');
    expectVm('nic', contains(target.mac));
    expectVm('dhcp', expected ? contains(`ip=${expected} `) : undefined);
    if (iscsi) {
      if (iscsi.state !== 'exported') problems.push(`head: ${node.name}'s iSCSI export is ${iscsi.state}, not exported`);
      expectVm('iscsi', all(contains(`${iscsi.target} lun `), contains(` as ${iscsi.initiator}`)));
      // After switch_root: / is a disk, the session is the node's target, and the marker only the golden image has.
      expectVm('root', all(contains('/ is /dev/'), contains(`iSCSI session ${iscsi.target};`), contains(`/etc/bootherd-golden: ${iscsi.marker}`)));
    }
    expectVm('hostname', equal(node.name));
    // With several heads, `head` is a round-robin name over all of them (src/lab/cluster.ts).
    const headNames = state.heads.map((h) => `${LAB_HEAD_NAME}.${LAB_DOMAIN}=${h.address}`);
    expectVm('dns', (e) => (headNames.includes(e.detail) ? undefined : `expected one of ${headNames.join(', ')}, got ${e.detail}`));
    expectVm('dns-self', expected ? equal(`${node.name}.${LAB_DOMAIN}=${expected}`) : undefined);
    expectVm('srv', contains(`${LAB_SRV.port} ${LAB_SRV.target}`));
    expectVm('ntp', ntpOffset);
    expectVm('booted', contains(`ok ${node.name}`));
    seconds = c.get('booted')?.at;

    // The head's side: the node's boot timeline, this boot's part of it.
    const view = await headJson<NodeView>(state, ['nodes', 'show', node.name]).catch((e: Error) => { problems.push(e.message); return undefined; });
    const stages = (view?.boot as BootTimeline | null | undefined)?.stages.filter((s) => s.at >= t0) ?? [];
    for (const s of stages) timeline.push({ at: (s.at - t0) / 1000, where: 'head', stage: s.stage, ok: true, detail: s.detail ?? '' });
    problems.push(...checkHeadTimeline(stages, t0, c.events, firmwarePxe, state.site !== undefined));
  } else {
    expectVm('discovery', equal(target.mac));
    seconds = c.get('discovery')?.at;
    ip = c.get('ipxe-dhcp')?.detail;
    const leases = await headJson<LeaseRecord[]>(state, ['leases', 'list']).catch((e: Error) => { problems.push(e.message); return [] as LeaseRecord[]; });
    const lease = leases.find((l) => l.mac === target.mac && l.state === 'bound');
    const [lo, hi] = LAB_POOL.map(ipToInt) as [number, number];
    if (!lease) problems.push(`head: no bound lease for ${target.mac}`);
    else {
      timeline.push({ at: (lease.updatedAt - t0) / 1000, where: 'head', stage: 'lease', ok: true, detail: lease.ip });
      if (ipToInt(lease.ip) < lo || ipToInt(lease.ip) > hi) problems.push(`head: the lease ${lease.ip} is outside the pool ${LAB_POOL.join('-')}`);
      if (ip && lease.ip !== ip) problems.push(`head: leased ${lease.ip}, but iPXE configured ${ip}`);
    }
  }
  if (c.result && !c.result.ok) {
    const unexplained = c.result.failed.filter((s) => !skipped.some((k) => k.stage === s));
    if (unexplained.length) problems.push(`the init reported failures: ${unexplained.join(' ')}`);
  }
  if (problems.length && c.errors.length) problems.push(`console errors: ${c.errors.slice(-3).join(' | ')}`);
  timeline.sort((a, b) => a.at - b.at);
  return {
    node: node?.name, mac: target.mac, ip, firmware, nic, accel, path: node ? 'node' : 'discovery', ...(iscsi ? { iscsi } : {}),
    ok: problems.length === 0, problems, skipped, timeline, seconds,
    poweredOnAt: new Date(t0).toISOString(), console: consoleFile, consoleTail: c.lines.slice(-15).map((l) => l.text),
  };
}

/** Pairs (head stage, VM stage) where the VM stage needs the head's to have happened. */
export function HEAD_BEFORE_VM(firmwarePxe: boolean): Array<[BootStage['stage'], VmStage]> {
  return [
    ['dhcp-ack', firmwarePxe ? 'pxe-dhcp' : 'ipxe-dhcp'], ['tftp-loader', 'ipxe'], ['ipxe-script', 'ipxe-script'],
    ['kernel', 'linux'], ['initrd', 'linux'], ['booted', 'booted'],
  ];
}

/**
 * The head's timeline of this boot against what the VM saw. Each head stage
 * must be there, in boot order, and must have happened before the VM
 * reported a step that needs it.
 */
export function checkHeadTimeline(stages: readonly BootStage[], t0: number, vm: readonly VmEvent[], firmwarePxe: boolean, proxy = false): string[] {
  const problems: string[] = [];
  // Beside a site DHCP server the ACK is the site's; bootherd's dhcp-ack is its PXE boot server's (4011), which
  // only firmware that finds no boot file in the proxy OFFER asks (neither SeaBIOS's iPXE nor OVMF does).
  const ack = !proxy;
  const expected: Array<BootStage['stage']> = ['dhcp-offer', ...(ack ? ['dhcp-ack' as const] : []), ...(firmwarePxe ? ['tftp-loader' as const] : []), 'ipxe-script', 'kernel', 'initrd', 'booted'];
  const firstAt = new Map<string, number>();
  for (const s of stages) if (!firstAt.has(s.stage)) firstAt.set(s.stage, s.at);
  let previous: { stage: string; at: number } | undefined;
  for (const stage of expected) {
    const at = firstAt.get(stage);
    if (at === undefined) { problems.push(`head: the API timeline has no ${stage} stage for this boot`); continue; }
    if (at < t0) problems.push(`head: ${stage} is before power-on`);
    if (previous && at < previous.at) problems.push(`head: ${stage} comes before ${previous.stage}`);
    previous = { stage, at };
  }
  // Each head stage against the first VM stage that cannot happen without it. bootherd stamps DHCP, the
  // script and the call-back before it answers, so the VM prints them later; it stamps the loader, kernel
  // and initrd when the last byte has left (a race with the VM's own "done" line), so those are held
  // against the next step that needs the whole file: iPXE running, the kernel running.
  for (const [headStage, vmStage] of HEAD_BEFORE_VM(firmwarePxe)) {
    const at = firstAt.get(headStage);
    const seen = vm.find((e) => e.stage === vmStage);
    if (at === undefined || !seen) continue;
    if ((at - t0) / 1000 > seen.at) problems.push(`head: ${headStage} at ${((at - t0) / 1000).toFixed(1)} s is after the VM's ${vmStage} at ${seen.at.toFixed(1)} s`);
  }
  const init = vm.find((e) => e.stage === 'init');
  const booted = firstAt.get('booted');
  if (init && booted !== undefined && (booted - t0) / 1000 < init.at) problems.push('head: booted was called before the VM\'s init started');
  return problems;
}

/** The report as a table for people. */
export function formatBootReport(r: LabBootReport): string {
  const who = r.node ? `${r.node} (${r.mac}, ${r.ip})` : `unknown MAC ${r.mac}${r.ip ? ` (pool address ${r.ip})` : ''}`;
  const lines = [`bootherd lab boot: ${who}, ${r.firmware} firmware, ${r.nic} NIC, ${r.accel}${r.iscsi ? `, root over iSCSI from ${r.iscsi.target}` : ''}`, '  SECONDS  WHERE  STAGE        RESULT  DETAIL'];
  for (const e of r.timeline) {
    const skipped = r.skipped.some((s) => s.stage === e.stage) && e.where === 'vm';
    lines.push(`  ${e.at.toFixed(1).padStart(7)}  ${e.where.padEnd(5)}  ${e.stage.padEnd(11)}  ${(skipped ? 'skip' : e.ok ? 'ok' : 'FAIL').padEnd(6)}  ${e.detail}`.trimEnd());
  }
  for (const s of r.skipped) lines.push(`  skipped ${s.stage}: ${s.why}`);
  if (r.ok) lines.push(`${r.path === 'node' ? 'booted' : 'discovery script served'} after ${r.seconds?.toFixed(1)} s; console: ${r.console}`);
  else {
    lines.push('FAILED:', ...r.problems.map((p) => `  - ${p}`), `console saved to ${r.console}; its last lines:`, ...r.consoleTail.map((l) => `  | ${l}`));
  }
  return lines.join('\n') + '\n';
}
