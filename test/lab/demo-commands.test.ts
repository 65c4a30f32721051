/**
 * What `npm start` (`bootherd demo`) prints under "try:" works as printed in
 * a clone, where no `bootherd` is on the PATH: the demo is started as npm
 * start starts it (under a lab name of this test), each printed line is run
 * by sh exactly as printed, in order, and each must exit 0; the last one
 * (`lab down`) removes the lab, after which Ctrl-C ends the demo cleanly.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { namespaceExists } from '../../src/lab/netns.ts';
import { BIN, readLab } from '../../src/lab/running.ts';
import { bootherd } from '../helpers/lab-vm.ts';
import { uniquePrefix } from '../helpers/lab-server.ts';

/** The "try:" block of the demo's output: the commands, one a line, as printed. */
function printedCommands(out: string): string[] {
  const lines = out.split('\n');
  const from = lines.indexOf('try:');
  if (from < 0) return [];
  const cmds: string[] = [];
  for (const l of lines.slice(from + 1)) {
    if (!l.startsWith('  ')) break;
    cmds.push(l.trim());
  }
  return cmds;
}

t.test('every command the demo prints runs as printed', async (t) => {
  const name = uniquePrefix('bhidemo');
  t.teardown(() => bootherd(['lab', 'down', '--name', name], 60_000));
  t.teardown(() => rmSync(`/tmp/${name}.leases`, { force: true }));
  // The PATH of a fresh clone: the system's, without any bootherd on it.
  const env = { ...process.env, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
  t.not(spawnSync('sh', ['-c', 'command -v bootherd'], { env }).status, 0, 'no bootherd on this PATH, as in a fresh clone');
  const demo = spawn(process.execPath, [BIN, 'demo', '--name', name, '--nodes', '2'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  demo.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    demo.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('Ctrl-C stops')) resolve(); });
    demo.once('exit', (code) => reject(new Error(`demo exited (${code}) before printing its commands:\n${err.slice(-4000)}`)));
  });
  const cmds = printedCommands(out);
  t.ok(cmds.length >= 4, `the demo prints its commands (${cmds.length})`);
  t.match(cmds.at(-1) ?? '', /lab down/, 'the last one takes the lab down');
  t.ok(cmds.every((c) => !/^bootherd\b|\sbootherd\s/.test(c)), 'none relies on a bootherd on the PATH');
  for (const cmd of cmds) {
    const r = spawnSync('sh', ['-c', cmd], { env, encoding: 'utf8', timeout: 15 * 60_000, maxBuffer: 16 << 20 });
    t.equal(r.status, 0, `runs as printed: ${cmd}${r.status === 0 ? '' : `\n${(r.stderr ?? '').slice(-3000)}`}`);
    if (/nodes list/.test(cmd)) t.match(r.stdout, /n001/, 'nodes list lists the lab\'s nodes');
    if (/lab boot/.test(cmd)) t.match(r.stdout, /bootherd lab boot: n001/, 'lab boot prints the boot timeline');
  }
  t.notOk(readLab(name), 'the printed lab down removed the lab');
  t.notOk(namespaceExists(`bootherd-${name}-head`), 'and its head namespace');
  demo.kill('SIGINT');
  t.equal(await exited, 0, 'Ctrl-C then ends the demo with exit 0');
  t.match(out, /removed nothing: the lab was already down/, 'saying the lab was already down');
});
