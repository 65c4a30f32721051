/**
 * A real PXE boot, UEFI: OVMF's own PXE client (the virtio NIC's option ROM
 * switched off) gets an address from bootherd's DHCP and ipxe.efi from its
 * TFTP; iPXE then asks DHCP again and fetches the node's script, the kernel
 * (EFI stub, initrd=<name> on its command line) and the initrd over HTTP; the
 * init checks DHCP, host name, DNS, SRV, NTP and calls back. The whole chain.
 */
import t from 'tap';
import { labNode } from '../../src/lab/cluster.ts';
import { headJson } from '../../src/lab/running.ts';
import { assertNodeBoot } from '../helpers/lab-boot-checks.ts';
import { labBootForTest, labUpForTest } from '../helpers/lab-vm.ts';

t.setTimeout(12 * 60_000);

t.test('UEFI: OVMF PXE, ipxe.efi by TFTP, then n002 boots end to end', async (t) => {
  const state = await labUpForTest(t, 'lu');
  const status = await headJson<{ services: Record<string, unknown> }>(state, ['status']);
  t.ok('tftp' in status.services, 'the lab head runs TFTP (OVMF loads ipxe.efi by TFTP)', { services: Object.keys(status.services) });
  const n002 = labNode(1);
  const { run, report } = await labBootForTest(state, ['--firmware', 'uefi', '--nic', 'virtio', '--node', n002.name], 'uefi-n002');
  t.equal(run.code, 0, 'lab boot exits 0', { stderr: run.stderr, problems: report?.problems });
  const r = report!;
  t.ok(r.ok, 'the report passes', { problems: r.problems, console: r.consoleTail });
  t.equal(r.timeline.find((e) => e.stage === 'pxe-dhcp')?.detail, n002.ip, 'OVMF\'s PXE client got the node\'s address');
  t.match(r.timeline.find((e) => e.where === 'head' && e.stage === 'dhcp-offer')?.detail, 'uefi-x64', 'DHCP saw UEFI x64 firmware (option 93)');
  await assertNodeBoot(t, state, r, n002, true);
});
