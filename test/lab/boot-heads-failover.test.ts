/**
 * A node boots through a 3-head lab although the head that answered it dies
 * in the middle of its boot (issue 18). The VM's link is slowed (netem on its
 * tap) so the kernel download takes seconds; once iPXE has run the node's
 * script from head H, H's bootherd is SIGKILLed (its etcd member with it).
 * The download breaks, the script's failed path runs DHCP again, a live head
 * answers with its own script URL, and the node boots to "booted" from it.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { labNode } from '../../src/lab/cluster.ts';
import { labBootForTest, labUpForTest } from '../helpers/lab-vm.ts';

t.setTimeout(15 * 60_000);

t.test('BIOS: n001 boots although the head that served its script is killed during the kernel download', async (t) => {
  const state = await labUpForTest(t, 'bf', 2, ['--heads', '3']);
  const n001 = labNode(0);
  const label = 'failover-n001';
  const consoleFile = path.join(state.dir, `console-${label}.log`);
  const tap = `vm${n001.mac.replace(/:/g, '').slice(-8)}`;
  const boot = labBootForTest(state, ['--firmware', 'bios', '--nic', 'e1000', '--node', n001.name], label, 420);
  let finished = false;
  void boot.then(() => { finished = true; });

  // Slow the VM's downloads with a token bucket (netem is not in every kernel; the tap's egress in the switch is the VM's ingress): 8 MB of kernel take about 8 s.
  const inSwitch = (args: string[]) => spawnSync('ip', ['netns', 'exec', state.lab.switchNs, ...args], { encoding: 'utf8' });
  let shaped = false;
  for (let i = 0; i < 600 && !finished && !shaped; i++) {
    shaped = inSwitch(['tc', 'qdisc', 'add', 'dev', tap, 'root', 'tbf', 'rate', '8mbit', 'burst', '32kbit', 'latency', '400ms']).status === 0;
    if (!shaped) await new Promise((r) => setTimeout(r, 50));
  }
  t.ok(shaped, `the VM's link is slowed to 8 Mbit/s (${tap})`);

  // The head whose script iPXE ran: the last script URL iPXE fetched before the script's first line.
  let victim: string | undefined;
  const console = () => (existsSync(consoleFile) ? readFileSync(consoleFile, 'utf8') : '');
  for (let i = 0; i < 4800 && !finished && !victim; i++) {
    const text = console();
    const at = text.indexOf(`bootherd: booting ${n001.name}`);
    if (at >= 0) victim = [...text.slice(0, at).matchAll(/http:\/\/(198\.18\.0\.\d+)\/boot\//g)].pop()?.[1];
    else await new Promise((r) => setTimeout(r, 50));
  }
  const head = state.heads.find((h) => h.address === victim);
  t.ok(head, `iPXE ran n001's script from a head (${victim})`);
  if (!head) { await boot; return; }
  process.kill(head.serverPid, 'SIGKILL');
  t.comment(`SIGKILLed ${head.name}'s bootherd (${head.serverPid}) with the kernel download under way`);

  const { run, report } = await boot;
  t.equal(run.code, 0, 'lab boot exits 0', { stderr: run.stderr.slice(-2000), problems: report?.problems });
  t.ok(report?.ok, 'the VM booted to "booted"', { problems: report?.problems, console: report?.consoleTail });
  const text = console();
  t.match(text, `bootherd: booting ${n001.name} failed`, 'the download from the dead head failed and the script took its failed path');
  const after = text.slice(text.indexOf(`bootherd: booting ${n001.name} failed`));
  const kernelFrom = [...after.matchAll(/http:\/\/(198\.18\.0\.\d+)\/files\/vmlinuz/g)].pop()?.[1];
  t.ok(kernelFrom && kernelFrom !== head.address, `the kernel came from a live head after that (${kernelFrom})`);
});
