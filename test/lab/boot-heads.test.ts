/**
 * A real PXE boot through three heads: `bootherd lab up --heads 3` (each head
 * with its own etcd member), then `bootherd lab boot` starts a BIOS VM that
 * boots n001 end to end from whichever head answers it first (every stage of
 * the VM, and the node's boot timeline as the API gives it). Then the head
 * the VM booted from is killed (`lab kill-head`): another head answers the
 * node's iPXE script and DNS, and has the boot timeline.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { labNode } from '../../src/lab/cluster.ts';
import { headJson, readLab, serverRunning, type LabHeadState } from '../../src/lab/running.ts';
import type { BootTimeline } from '../../src/cluster/types.ts';
import type { NodeView } from '../../src/services/http/views.ts';
import { assertNodeBoot } from '../helpers/lab-boot-checks.ts';
import { bootherd, labBootForTest, labUpForTest } from '../helpers/lab-vm.ts';

t.setTimeout(12 * 60_000);

t.test('BIOS: n001 boots end to end through a 3-head lab; its head killed, another answers for it', async (t) => {
  const state = await labUpForTest(t, 'bh', 2, ['--heads', '3']);
  t.equal(state.heads.length, 3, 'three heads');
  const n001 = labNode(0);

  const { run, report } = await labBootForTest(state, ['--firmware', 'bios', '--nic', 'e1000', '--node', n001.name], 'heads-n001');
  t.equal(run.code, 0, 'lab boot exits 0', { stderr: run.stderr, problems: report?.problems });
  const r = report!;
  t.ok(r.ok, 'the report passes', { problems: r.problems, console: r.consoleTail });
  await assertNodeBoot(t, state, r, n001, false);

  // The head the init's DHCP answer came from (its server identifier), and the one that served the kernel.
  const dhcp = r.timeline.find((e) => e.where === 'vm' && e.stage === 'dhcp')?.detail ?? '';
  const server = /server=(\S+)/.exec(dhcp)?.[1];
  const from = state.heads.find((h) => h.address === server);
  t.ok(from, `the VM booted from one of the heads (DHCP server ${server})`);
  if (!from) return;
  t.match(r.timeline.find((e) => e.where === 'vm' && e.stage === 'kernel')?.detail, /^http:\/\/198\.18\.0\.[1-3]\/files\/vmlinuz$/, 'and got its kernel from a head');

  const kill = await bootherd(['lab', 'kill-head', '--name', state.name, String(from.index)], 60_000);
  t.equal(kill.code, 0, `lab kill-head ${from.index} (${from.name})`);
  const now = readLab(state.name)!;
  t.notOk(serverRunning(now.heads[from.index - 1]!), `${from.name}'s bootherd is gone`);

  const other = state.heads.find((h) => h !== from) as LabHeadState;
  const inOther = (cmd: string, args: string[]) => spawnSync('ip', ['netns', 'exec', other.ns, cmd, ...args], { encoding: 'utf8', timeout: 30_000 }).stdout;
  t.match(inOther('curl', ['-sS', '--max-time', '10', `http://${other.address}/boot/${n001.mac.replace(/:/g, '-')}.ipxe`]),
    new RegExp(`booting ${n001.name} \\(${n001.ip.replace(/\./g, '\\.')}`), `${other.name} serves n001's iPXE script`);
  t.equal(inOther('dig', [`@${other.address}`, '+short', '+tries=1', '+time=2', `${n001.name}.lab.test`]).trim(), n001.ip, `${other.name}'s DNS answers n001`);
  const view = await headJson<NodeView>(now, ['nodes', 'show', n001.name], other);
  const stages = (view.boot as BootTimeline | null)?.stages.map((s) => s.stage) ?? [];
  t.ok(stages.includes('booted'), `${other.name} has n001's boot timeline, up to booted`);
});
