/**
 * Assertions shared by the VM boot tests: every stage of a node's boot seen on
 * the VM's console, and the node's boot timeline read from the API agreeing
 * with it. Orderings only (cause before effect), never durations.
 */
import type { Test } from 'tap';
import type { BootTimeline } from '../../src/cluster/types.ts';
import { HEAD_BEFORE_VM, type LabBootReport } from '../../src/lab/boot.ts';
import { headJson, type LabState } from '../../src/lab/running.ts';
import type { NodeView } from '../../src/services/http/views.ts';

type Asserts = Pick<Test, 'ok' | 'equal' | 'same' | 'match' | 'pass'>;

/** The VM-side stages of a node's boot, in the order they happen; an iSCSI root adds the login and the switch to it. */
export function nodeVmStages(firmwarePxe: boolean, iscsiRoot = false): string[] {
  return [...(firmwarePxe ? ['pxe-dhcp', 'pxe-loader'] : []), 'ipxe', 'ipxe-dhcp', 'ipxe-script', 'kernel', 'initrd', 'linux',
    'init', 'nic', 'dhcp', ...(iscsiRoot ? ['iscsi', 'root'] : []), 'hostname', 'dns', 'dns-self', 'srv', 'ntp', 'booted'];
}

/** Beside a site DHCP server (`proxy`) the ACK is the site's: bootherd's timeline has its proxy OFFER only. */
export function headStages(firmwarePxe: boolean, proxy = false): string[] {
  return ['dhcp-offer', ...(proxy ? [] : ['dhcp-ack']), ...(firmwarePxe ? ['tftp-loader'] : []), 'ipxe-script', 'kernel', 'initrd', 'booted'];
}

/** Asserts every stage of a node's boot, then compares the API's timeline of the node with the VM's console. */
export async function assertNodeBoot(t: Asserts, state: LabState, r: LabBootReport, node: { name: string; ip: string }, firmwarePxe: boolean, iscsiRoot = false, proxy = false): Promise<void> {
  const vm = r.timeline.filter((e) => e.where === 'vm');
  const at = (stage: string) => vm.find((e) => e.stage === stage)?.at;
  for (const stage of nodeVmStages(firmwarePxe, iscsiRoot)) {
    const skipped = r.skipped.find((s) => s.stage === stage);
    if (skipped) { t.pass(`VM stage ${stage}`, { skip: skipped.why }); continue; }
    const e = vm.find((x) => x.stage === stage);
    t.ok(e?.ok, `VM stage ${stage}${e ? ` at ${e.at.toFixed(1)} s: ${e.detail}` : ' missing'}`);
  }
  const seen = nodeVmStages(firmwarePxe, iscsiRoot).map(at).filter((x): x is number => x !== undefined);
  t.same(seen, [...seen].sort((a, b) => a - b), 'the VM reached its stages in boot order');
  t.equal(vm.find((e) => e.stage === 'ipxe-dhcp')?.detail, node.ip, proxy ? 'iPXE got the address the site\'s DHCP server reserves for the node' : 'iPXE got the node\'s reserved address');
  t.equal(vm.find((e) => e.stage === 'hostname')?.detail, node.name, 'the init\'s host name came from DHCP');
  t.match(vm.find((e) => e.stage === 'booted')?.detail, `ok ${node.name}`, 'the head acknowledged the booted call-back');

  // The API, read on its own, not through the report.
  const view = await headJson<NodeView>(state, ['nodes', 'show', node.name]);
  const boot = view.boot as BootTimeline;
  t.ok(boot, 'the API has a boot timeline for the node');
  const t0 = Date.parse(r.poweredOnAt);
  const stages = boot.stages.filter((s) => s.at >= t0);
  const first = new Map<string, number>();
  for (const s of stages) if (!first.has(s.stage)) first.set(s.stage, (s.at - t0) / 1000);
  t.same([...first.keys()], headStages(firmwarePxe, proxy), 'the API timeline has every head stage of this boot, in order');
  for (const [head, vmStage] of HEAD_BEFORE_VM(firmwarePxe)) {
    if ((head === 'tftp-loader' && !firmwarePxe) || (head === 'dhcp-ack' && proxy)) continue;
    const h = first.get(head);
    const v = at(vmStage);
    t.ok(h !== undefined && v !== undefined && h <= v, `API ${head} (${h?.toFixed(1)} s) happened before the VM's ${vmStage} (${v?.toFixed(1)} s)`);
  }
  const booted = first.get('booted');
  const init = at('init');
  t.ok(booted !== undefined && init !== undefined && booted >= init, 'the API\'s booted came after the VM\'s init started');
  t.same(r.timeline.filter((e) => e.where === 'head').map((e) => e.stage), stages.map((s) => s.stage), 'the report shows the API\'s timeline as it is');
}
