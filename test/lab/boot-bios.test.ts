/**
 * A real PXE boot, BIOS: `bootherd lab up`, then `bootherd lab boot` starts a
 * QEMU VM (SeaBIOS, the e1000's iPXE ROM from ipxe-qemu, TCG) that boots the
 * lab's Linux kernel and initrd from bootherd: DHCP, iPXE script, kernel and
 * initrd over HTTP, then the init's own DHCP, host name, DNS, SRV, NTP and
 * the booted call-back. At the same time a second VM with a MAC no node has
 * gets a pool address and the discovery script. `lab down` removes it all.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { LAB_POOL, labNode, LAB_UNKNOWN_MAC } from '../../src/lab/cluster.ts';
import { namespaceExists } from '../../src/lab/netns.ts';
import { headJson } from '../../src/lab/running.ts';
import type { LeaseRecord } from '../../src/cluster/types.ts';
import { ipToInt } from '../../src/net/ipv4.ts';
import { assertNodeBoot } from '../helpers/lab-boot-checks.ts';
import { bootherd, labBootForTest, labUpForTest } from '../helpers/lab-vm.ts';

t.setTimeout(12 * 60_000);

t.test('BIOS: n001 boots end to end; an unknown MAC gets the discovery script', async (t) => {
  const state = await labUpForTest(t, 'lb');
  const status = await bootherd(['lab', 'status', '--name', state.name], 60_000);
  t.equal(status.code, 0, `lab status: up (${status.stderr})`);
  t.match(status.stdout, /n001\s+198\.18\.0\.11\s+52:54:00:b0:00:01/, 'lab status lists the nodes');

  const n001 = labNode(0);
  const [node, unknown] = await Promise.all([
    labBootForTest(state, ['--firmware', 'bios', '--nic', 'e1000', '--node', n001.name], 'bios-n001'),
    labBootForTest(state, ['--firmware', 'bios', '--mac', LAB_UNKNOWN_MAC], 'bios-unknown'),
  ]);

  t.equal(node.run.code, 0, 'lab boot exits 0', { stderr: node.run.stderr, problems: node.report?.problems });
  const r = node.report!;
  t.ok(r.ok, 'the report passes', { problems: r.problems, console: r.consoleTail });
  t.equal(r.path, 'node');
  await assertNodeBoot(t, state, r, n001, false);

  t.equal(unknown.run.code, 0, 'lab boot of the unknown MAC exits 0', { stderr: unknown.run.stderr, problems: unknown.report?.problems });
  const u = unknown.report!;
  t.equal(u.path, 'discovery', 'no node has the MAC: the discovery path');
  const ip = u.timeline.find((e) => e.stage === 'ipxe-dhcp')?.detail ?? '';
  t.ok(ipToInt(ip) >= ipToInt(LAB_POOL[0]) && ipToInt(ip) <= ipToInt(LAB_POOL[1]), `a pool address: ${ip}`);
  t.equal(u.timeline.find((e) => e.stage === 'discovery')?.detail, LAB_UNKNOWN_MAC, 'the discovery script ran for that MAC');
  const leases = await headJson<LeaseRecord[]>(state, ['leases', 'list']);
  t.ok(leases.some((l) => l.mac === LAB_UNKNOWN_MAC && l.ip === ip && l.state === 'bound'), 'the API has the pool lease');
  t.notOk(leases.some((l) => l.mac === LAB_UNKNOWN_MAC && l.node), 'and it belongs to no node');

  const down = await bootherd(['lab', 'down', '--name', state.name], 60_000);
  t.equal(down.code, 0);
  t.notOk(state.lab.namespaces.some(namespaceExists), 'lab down removed the namespaces');
  t.notOk(existsSync(state.dir), 'and the lab directory');
  t.not((await bootherd(['lab', 'status', '--name', state.name], 60_000)).code, 0, 'lab status: down');
});
