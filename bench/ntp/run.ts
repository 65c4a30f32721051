/**
 * bench/ntp: bootherd's NTP server against chronyd, in one run, on the same
 * clock (every namespace shares the host's), inside lab namespaces.
 *
 *   sudo npm run bench:ntp            (node --import tsx bench/ntp/run.ts)
 *   ... -- --profile DIR             bootherd writes V8 CPU profiles into DIR
 *
 * For each server: the highest request rate answered with < 0.1% loss
 * (open-loop load from bench/ntp/ntpload.c, compiled here with gcc), and the
 * offset chronyd -Q measures against it (median of 3; the true offset is 0,
 * since server and client read the same clock). Configurations:
 *   chronyd 4.3          pinned to CPU 0, load generator pinned to CPU 1
 *   bootherd, 1 thread   pinned to CPU 0, load generator pinned to CPU 1
 *   bootherd, 2 threads  (ntp.workers: 2) on both CPUs, sharing them with the generator
 * The generator reports its own CPU use: near 100% of its core would mean it,
 * not the server, was the limit.
 *
 * Not a test: numbers depend on the machine and on what else runs on it.
 * Bounded: about 3 minutes.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../src/lab/netns.ts';
import { cpuProfileFlags, stopProcess } from '../lib/proc.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(HERE, '../../bin/bootherd.mjs');
const BOOTHERD = '198.18.0.1';
const CHRONYD = '198.18.0.2';
const LOSS_LIMIT = 0.1; // percent
const TRIAL_SECONDS = 2;
const MAX_TRIALS = 16;
const ATTEMPTS = 3;
const CPUS = os.cpus().length;
/** `--profile DIR`: bootherd writes a V8 CPU profile per run into DIR (open it in Chrome's DevTools). */
const PROFILE = process.argv.includes('--profile') ? path.resolve(process.argv[process.argv.indexOf('--profile') + 1]!) : undefined;

interface Trial { rate: number; sent: number; received: number; loss: number; cpu: number }

const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-bench-ntp-'));
const gen = path.join(dir, 'ntpload');
execFileSync('gcc', ['-O2', '-Wall', '-o', gen, path.join(HERE, 'ntpload.c')]);

const lab = Lab.create({ prefix: `bnntp${process.pid.toString(36)}`, clients: 2, clientCidr: (i) => [`${CHRONYD}/24`, '198.18.0.10/24'][i] });
const [chronydNs, loadNs] = lab.clients.map((c) => c.ns) as [string, string];
const cleanup = () => lab.destroy();
process.once('SIGINT', () => { cleanup(); process.exit(130); });
const deadline = setTimeout(() => { process.stderr.write('bench: over 10 minutes, giving up\n'); cleanup(); process.exit(1); }, 600_000);
deadline.unref();

function load(server: string, rate: number, seconds: number, pinned: boolean): Trial {
  const args = [gen, server, '123', String(Math.round(rate)), String(seconds), '8'];
  const out = pinned && CPUS > 1 ? lab.exec(loadNs, 'taskset', ['-c', '1', ...args], 60_000) : lab.exec(loadNs, args[0]!, args.slice(1), 60_000);
  const v = Object.fromEntries(out.trim().split(' ').map((kv) => kv.split('=') as [string, string]));
  return { rate, sent: Number(v['attempted']), received: Number(v['received']), loss: Number(v['loss']), cpu: Number(v['cpu']) };
}

async function waitAnswering(server: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    if (load(server, 200, 0.3, false).received > 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${server} does not answer`);
}

/** The highest rate with loss under the limit: grow by 1.5x until it fails, then bisect; a failure is retried (a shared machine is noisy). */
function maxRate(server: string, pinned: boolean): { best: Trial | undefined; trials: Trial[] } {
  const trials: Trial[] = [];
  const passes = (rate: number): boolean => {
    for (let attempt = 0; attempt < ATTEMPTS && trials.length < MAX_TRIALS; attempt++) {
      const r = load(server, rate, TRIAL_SECONDS, pinned);
      trials.push(r);
      process.stderr.write(`  ${server} ${Math.round(rate)}/s: loss ${r.loss.toFixed(3)}%, generator CPU ${r.cpu}%\n`);
      if (r.loss < LOSS_LIMIT) return true;
    }
    return false;
  };
  let low = 0;
  let high = 0;
  let rate = 5_000;
  while (trials.length < MAX_TRIALS) {
    if (passes(rate)) { low = rate; rate *= 1.5; } else { high = rate; break; }
  }
  while (high && low && high / low > 1.08 && trials.length < MAX_TRIALS) {
    const mid = (low + high) / 2;
    if (passes(mid)) low = mid; else high = mid;
  }
  const best = trials.filter((x) => x.loss < LOSS_LIMIT).sort((a, b) => b.rate - a.rate)[0];
  return { best, trials };
}

function offset(server: string): number | undefined {
  const values: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = lab.run(loadNs, 'chronyd', ['-Q', '-u', 'root', '-f', '/dev/null', `server ${server} iburst maxsamples 4`, `pidfile ${dir}/q${i}.pid`], 40_000);
    const m = /System clock wrong by (-?[\d.]+) seconds/.exec(r.stdout + r.stderr);
    if (m) values.push(Number(m[1]));
  }
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)];
}

function spawnLogged(ns: string, cmd: string, args: string[]): { proc: ChildProcess; log: () => string } {
  const proc = lab.spawn(ns, cmd, args);
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
  proc.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
  return { proc, log: () => log };
}

async function startBootherd(workers: number, cpus: string): Promise<ChildProcess> {
  const file = path.join(dir, `cluster-${workers}.yaml`);
  writeFileSync(file, `
head: { name: head, address: ${BOOTHERD} }
state: ${dir}/state-${workers}
log: { level: warn }
dhcp: { enabled: false }
subnets:
  - network: 198.18.0.0/24
ntp:
  localStratum: 10
  rateLimit: { enabled: false }   # chronyd has no rate limit unless configured
  workers: ${workers}
`);
  const profile = cpuProfileFlags(PROFILE);
  const { proc, log } = spawnLogged(lab.head.ns, 'taskset', ['-c', cpus, process.execPath, ...profile, BIN, 'serve', '--config', file]);
  proc.once('exit', (code) => { if (code) process.stderr.write(`bootherd exited ${code}:\n${log()}\n`); });
  await waitAnswering(BOOTHERD);
  return proc;
}

interface Row { name: string; cores: string; best: Trial | undefined; offset: number | undefined }
const rows: Row[] = [];

try {
  process.stderr.write(`bench: ${CPUS} CPUs, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
  writeFileSync(path.join(dir, 'chrony.conf'), `local stratum 10\nallow 198.18.0.0/15\ncmdport 0\npidfile ${dir}/chronyd.pid\n`);
  // -x: chronyd never touches the clock every namespace shares with the host.
  const chronyd = spawnLogged(chronydNs, 'taskset', ['-c', '0', 'chronyd', '-x', '-d', '-u', 'root', '-f', path.join(dir, 'chrony.conf')]);
  await waitAnswering(CHRONYD);
  process.stderr.write('chronyd, 1 core:\n');
  const chronydOffset = offset(CHRONYD);
  rows.push({ name: 'chronyd 4.3', cores: '1', best: maxRate(CHRONYD, true).best, offset: chronydOffset });
  await stopProcess(chronyd.proc);

  process.stderr.write('bootherd, 1 thread, 1 core:\n');
  let b = await startBootherd(1, '0');
  const bootherdOffset = offset(BOOTHERD);
  rows.push({ name: 'bootherd', cores: '1', best: maxRate(BOOTHERD, true).best, offset: bootherdOffset });
  await stopProcess(b);

  if (CPUS > 1) {
    process.stderr.write('bootherd, 2 threads, both cores (shared with the generator):\n');
    b = await startBootherd(2, '0,1');
    const offset2 = offset(BOOTHERD);
    rows.push({ name: 'bootherd, workers: 2', cores: '2*', best: maxRate(BOOTHERD, false).best, offset: offset2 });
    await stopProcess(b);
  }
} finally {
  cleanup();
}

const ref = rows[0]!;
const us = (s: number | undefined) => (s === undefined ? 'n/a' : `${(s * 1e6).toFixed(0)} µs`);
const lines = [
  '| server | cores | replies/s at < 0.1% loss | vs chronyd | generator CPU | chronyd -Q offset (median of 3) | vs chronyd |',
  '|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.name} | ${r.cores} | ${r.best ? Math.round(r.best.rate).toLocaleString('en') : 'n/a'} | ${r.best && ref.best ? (r.best.rate / ref.best.rate).toFixed(2) : 'n/a'} | ${r.best ? `${r.best.cpu}%` : 'n/a'} | ${us(r.offset)} | ${r.offset !== undefined && ref.offset !== undefined ? `${((Math.abs(r.offset) - Math.abs(ref.offset)) * 1e6).toFixed(0)} µs` : 'n/a'} |`),
  '',
  `2* = bootherd's two threads share both CPUs with the load generator. Load average at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}.`,
];
process.stdout.write(lines.join('\n') + '\n');
