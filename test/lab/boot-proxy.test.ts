/**
 * Booting beside the site's own DHCP server (`bootherd lab up --proxy`):
 * dnsmasq gives every address, bootherd's subnet is mode: proxy and answers
 * only the firmware, with a proxy OFFER (no address) naming the boot file.
 * SeaBIOS's iPXE ROM and OVMF's own PXE client (TFTP ipxe.efi, then iPXE, the
 * script over HTTP) both boot to "booted" with the site's address, which
 * bootherd learned: DNS (the init's dns-self check), the API and the timeline
 * show it.
 */
import { readFileSync } from 'node:fs';
import t from 'tap';
import type { BootTimeline } from '../../src/cluster/types.ts';
import { labNode } from '../../src/lab/cluster.ts';
import { headJson } from '../../src/lab/running.ts';
import type { NodeView } from '../../src/services/http/views.ts';
import { assertNodeBoot } from '../helpers/lab-boot-checks.ts';
import { labBootForTest, labUpForTest } from '../helpers/lab-vm.ts';

t.setTimeout(20 * 60_000);

t.test('proxy mode: SeaBIOS iPXE and OVMF PXE boot with the site server\'s addresses', async (t) => {
  const state = await labUpForTest(t, 'hp', 2, ['--proxy']);
  t.ok(state.site, 'the lab runs a site DHCP server');
  const nodes = [
    { node: labNode(0), args: ['--firmware', 'bios'], label: 'proxy-bios-n001', firmwarePxe: false, offer: 'iPXE proxy' },
    { node: labNode(1), args: ['--firmware', 'uefi', '--nic', 'virtio'], label: 'proxy-uefi-n002', firmwarePxe: true, offer: 'uefi-x64 proxy' },
  ];
  for (const { node, args, label, firmwarePxe, offer } of nodes) {
    const before = await headJson<NodeView>(state, ['nodes', 'show', node.name]);
    t.equal(before.ip, null, `${node.name}: no address before it boots (known by MAC only)`);
    const { run, report } = await labBootForTest(state, [...args, '--node', node.name], label);
    t.equal(run.code, 0, `${label}: lab boot exits 0`, { stderr: run.stderr, problems: report?.problems });
    const r = report!;
    t.ok(r.ok, `${label}: the report passes`, { problems: r.problems, console: r.consoleTail });
    if (firmwarePxe) t.equal(r.timeline.find((e) => e.stage === 'pxe-dhcp')?.detail, node.ip, 'OVMF\'s PXE client got the site server\'s address');
    t.equal(r.timeline.find((e) => e.where === 'head' && e.stage === 'dhcp-offer')?.detail, offer, 'the head made a proxy OFFER to the firmware');
    await assertNodeBoot(t, state, r, node, firmwarePxe, false, true);
    const view = await headJson<NodeView>(state, ['nodes', 'show', node.name]);
    t.equal(view.ip, node.ip, `${node.name}: the API shows the address the site's server gave`);
    t.ok(view.ipFrom === 'dhcp-request' || view.ipFrom === 'pxe-request', `${node.name}: and says where it came from (${view.ipFrom})`);
    const script = (view.boot as BootTimeline).stages.find((s) => s.stage === 'ipxe-script' && s.at >= Date.parse(r.poweredOnAt));
    t.equal(script?.detail, `${node.mac} at ${node.ip}`, 'the boot timeline names the address');
  }
  const siteLog = readFileSync(state.site!.log, 'utf8');
  for (const { node } of nodes) t.match(siteLog, new RegExp(`DHCPACK\\(eth0\\) ${node.ip.replace(/\./g, '\\.')} ${node.mac}`), `the site's dnsmasq ACKed ${node.ip} to ${node.name}`);
});
