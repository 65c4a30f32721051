/**
 * TFTP benchmark: bootherd against tftpd-hpa (in.tftpd) and dnsmasq's TFTP,
 * side by side, in one run, on the same files, inside lab namespaces (a head
 * namespace for the server, a client namespace for the load generator, a
 * bridge between them).
 *
 *   npm run bench:tftp                 # everything
 *   npm run bench:tftp -- --quick      # fewer single-stream cases, storm of 100 only
 *   npm run bench:tftp -- --servers bootherd,tftpd-hpa
 *   npm run bench:tftp -- --single 1432x16 --storms 500   # chosen cases only
 *   npm run bench:tftp -- --single none --storms 500      # the storm alone
 *
 * 1. Single stream: one 32 MiB transfer for blksize 512/1432/1468/8192 x
 *    windowsize 1/4/16/64. A server that does not grant windowsize (neither
 *    tftpd-hpa 5.2 nor dnsmasq 2.90 does) is measured once per blksize.
 *    Every server first serves one unmeasured transfer of the file (its page
 *    cache, bootherd's file cache and JIT are then warm, as they are for the
 *    second node of a boot), and each case is the median of 3 transfers: a
 *    transfer takes 0.1-0.7 s, and a cold first one measured 30% slower.
 * 2. Storm: N = 100 and 500 iPXE-like lockstep clients (blksize 1432,
 *    windowsize 1) fetching a 1 MiB file at once: time until the last one
 *    finishes, per-client p50/p99, failures, retransmissions.
 *
 * The load generator (loadgen.c, compiled here) holds N independent
 * sessions, each with its own socket, in one epoll loop; it prints its own
 * CPU time, shown next to the server's, so a saturated generator would be
 * visible. Every received block is compared with the file.
 *
 * Results go to stdout (a table) and bench/results/tftp-<time>.json.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../src/lab/netns.ts';
import { cpuSeconds, stopProcess } from '../lib/proc.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const RESULTS = path.join(REPO, 'bench/results');
const HEAD = '198.18.0.1';
const CLIENT = '198.18.0.2';
/** Transfers per single-stream case; the median is reported. */
const SINGLE_TRIALS = 3;

const args = process.argv.slice(2);
const quick = args.includes('--quick');
/** The value after `--name`, if given. */
const flag = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const SERVERS = flag('--servers')?.split(',') ?? ['bootherd', 'tftpd-hpa', 'dnsmasq'];
const BLOCK_SIZES = quick ? [1432, 8192] : [512, 1432, 1468, 8192];
const WINDOW_SIZES = quick ? [1, 16] : [1, 4, 16, 64];
/** `--single 1432x16,512x1`: only these blksize x windowsize cases ("none": no single streams); default: every pair above. */
const singleArg = flag('--single');
const SINGLES: Array<[number, number]> = singleArg === undefined
  ? BLOCK_SIZES.flatMap((b) => WINDOW_SIZES.map((w): [number, number] => [b, w]))
  : singleArg === 'none' ? [] : singleArg.split(',').map((c) => { const [b, w] = c.split('x').map(Number); return [b!, w ?? 1]; });
/** `--storms 500`: only these storm sizes ("none": no storm). */
const stormsArg = flag('--storms');
const STORMS = stormsArg === undefined ? (quick ? [100] : [100, 500]) : stormsArg === 'none' ? [] : stormsArg.split(',').map(Number);

interface LoadResult {
  sessions: number; ok: number; failed: number; wall_ms: number; p50_ms: number; p99_ms: number; max_ms: number;
  retransmits: number; bytes: number; blksize: number; windowsize: number; cpu_ms: number; error: string | null;
}

interface Row {
  server: string; test: string; blksize: number; windowsize: number; sessions: number;
  result: LoadResult; serverCpuMs: number; mibPerS: number;
}

// ---- setup ----

mkdirSync(RESULTS, { recursive: true });
const loadgen = path.join(RESULTS, 'tftp-loadgen');
execFileSync('cc', ['-O2', '-Wall', '-o', loadgen, path.join(HERE, 'loadgen.c')], { stdio: 'inherit' });

const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-bench-tftp-'));
const root = path.join(dir, 'root');
mkdirSync(root);
// in.tftpd drops to the tftp user: the files must be readable by anyone.
chmodSync(dir, 0o755);
chmodSync(root, 0o755);
const files = { big: path.join(root, 'big-32m.bin'), storm: path.join(root, 'storm-1m.bin') };
writeFileSync(files.big, randomBytes(32 << 20), { mode: 0o644 });
writeFileSync(files.storm, randomBytes(1 << 20), { mode: 0o644 });

const lab = Lab.create({ prefix: `btbench${process.pid.toString(36)}`, clients: 1, clientCidr: () => `${CLIENT}/24` });
const cleanup = () => { lab.destroy(); rmSync(dir, { recursive: true, force: true }); };
process.once('SIGINT', () => { cleanup(); process.exit(130); });

interface Running { readonly name: string; readonly proc: ChildProcess; stop(): Promise<void> }

async function waitForPort(): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const out = lab.run(lab.head.ns, 'ss', ['-Hunl', 'sport = :69']).stdout;
    if (out.trim()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the server did not open UDP port 69 within 10 s');
}

async function startServer(name: string): Promise<Running> {
  let proc: ChildProcess;
  switch (name) {
    case 'bootherd': {
      const config = path.join(dir, 'cluster.yaml');
      writeFileSync(config, [
        `head: { address: ${HEAD} }`,
        `state: ${path.join(dir, 'state')}`,
        `files: ${path.join(dir, 'files')}`,
        'log: { level: warn }',
        'subnets: [ { network: 198.18.0.0/24, interface: eth0 } ]',
        'dhcp: { enabled: false }',
        'dns: { enabled: false }',
        'ntp: { enabled: false }',
        'http: { enabled: false }',
        // Same limits as the reference servers: no MTU clamp (tftpd-hpa's default), enough transfers for the storm.
        `tftp: { address: ${HEAD}, root: ${root}, maxBlockSize: 65464, maxWindowSize: 64, maxTransfers: 2000, maxTransfersPerClient: 2000 }`, // every generated client shares one address
        '',
      ].join('\n'));
      proc = lab.spawn(lab.head.ns, process.execPath, [path.join(REPO, 'bin/bootherd.mjs'), 'serve', '--config', config]);
      break;
    }
    case 'tftpd-hpa':
      // -L: stay in the foreground and listen; -s: chroot to the root; -B: tftpd-hpa's default maximum, stated.
      proc = lab.spawn(lab.head.ns, 'in.tftpd', ['-L', '-s', root, '-a', `${HEAD}:69`, '-B', '65464']);
      break;
    case 'dnsmasq':
      // --tftp-max: dnsmasq serves 50 transfers at once by default; raised for the storm. It caps blksize at the interface MTU.
      proc = lab.spawn(lab.head.ns, 'dnsmasq', ['--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--enable-tftp', `--tftp-root=${root}`,
        `--listen-address=${HEAD}`, '--bind-interfaces', '--user=root', '--pid-file=', '--tftp-max=2000', '--quiet-tftp', '--log-facility=-']);
      break;
    default:
      throw new Error(`unknown server ${name}`);
  }
  proc.stdout?.resume();
  proc.stderr?.resume();
  await waitForPort();
  return {
    name, proc,
    stop: () => stopProcess(proc),
  };
}

function load(server: Running, remote: string, local: string, n: number, blksize: number, windowsize: number, limitS: number): Row['result'] & { serverCpuMs: number } {
  const before = cpuSeconds(server.proc.pid, true);
  const r = lab.run(lab.clients[0]!.ns, loadgen, ['-s', HEAD, '-r', remote, '-l', local, '-n', String(n), '-b', String(blksize), '-w', String(windowsize), '-T', String(limitS), '-B', CLIENT], (limitS + 30) * 1000);
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  if (!line.startsWith('{')) throw new Error(`load generator failed (${r.code}): ${r.stderr}`);
  return { ...(JSON.parse(line) as LoadResult), serverCpuMs: (cpuSeconds(server.proc.pid, true) - before) * 1000 };
}

// ---- runs ----

const rows: Row[] = [];
const started = new Date();
const loadAtStart = os.loadavg();
for (const name of SERVERS) {
  const server = await startServer(name);
  process.stderr.write(`bench: ${name} running\n`);
  try {
    const lockstepOnly = new Set<number>();
    if (SINGLES.length) load(server, 'big-32m.bin', files.big, 1, 1432, 1, 120); // warm-up, not measured
    for (const [blksize, windowsize] of SINGLES) {
      // A server that did not grant a window for this blksize runs lockstep: measured once (windowsize 1, or the first case asked).
      if (windowsize > 1 && lockstepOnly.has(blksize)) continue;
      const trials = Array.from({ length: SINGLE_TRIALS }, () => load(server, 'big-32m.bin', files.big, 1, blksize, windowsize, 120));
      trials.sort((a, b) => (a.ok ? a.max_ms : Infinity) - (b.ok ? b.max_ms : Infinity));
      const r = trials[SINGLE_TRIALS >> 1]!;
      if (windowsize > 1 && r.windowsize <= 1) lockstepOnly.add(blksize);
      const row: Row = { server: name, test: 'single', blksize, windowsize, sessions: 1, result: r, serverCpuMs: r.serverCpuMs, mibPerS: r.ok ? (r.bytes / (1 << 20)) / (r.max_ms / 1000) : 0 };
      rows.push(row);
      process.stderr.write(`bench: ${name} single blksize ${blksize} (granted ${r.blksize}) windowsize ${windowsize} (granted ${r.windowsize}): ${row.mibPerS.toFixed(1)} MiB/s${r.failed ? `, FAILED: ${r.error}` : ''}\n`);
    }
    for (const n of STORMS) {
      const r = load(server, 'storm-1m.bin', files.storm, n, 1432, 1, 180);
      rows.push({ server: name, test: 'storm', blksize: 1432, windowsize: 1, sessions: n, result: r, serverCpuMs: r.serverCpuMs, mibPerS: r.ok ? (r.ok * r.bytes / (1 << 20)) / (r.wall_ms / 1000) : 0 });
      process.stderr.write(`bench: ${name} storm ${n}: last done after ${(r.max_ms / 1000).toFixed(2)} s, p50 ${(r.p50_ms / 1000).toFixed(2)} s, p99 ${(r.p99_ms / 1000).toFixed(2)} s, ${r.failed} failed, ${r.retransmits} client retransmissions\n`);
    }
  } finally {
    await server.stop();
  }
}
cleanup();

// ---- report ----

const fmt = (v: number, d = 1) => v.toFixed(d);
const lines: string[] = [];
lines.push(`TFTP benchmark, ${started.toISOString()}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load average ${loadAtStart.map((l) => l.toFixed(1)).join(' ')} at the start, ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} at the end`);
lines.push('');
lines.push('Single 32 MiB transfer, MiB/s (granted blksize/windowsize in brackets when they differ from the request):');
const header = ['blksize', 'window', ...SERVERS, ...(SERVERS.includes('tftpd-hpa') ? SERVERS.filter((s) => s !== 'tftpd-hpa').map((s) => `${s}/hpa`) : [])];
const W = 19;
lines.push(header.map((h, i) => h.padStart(i < 2 ? 8 : W)).join(''));
for (const [blksize, windowsize] of SINGLES) {
  const cells = SERVERS.map((s) => rows.find((r) => r.server === s && r.test === 'single' && r.blksize === blksize && r.windowsize === windowsize)
    ?? rows.find((r) => r.server === s && r.test === 'single' && r.blksize === blksize));
  const show = (r: Row | undefined) => {
    if (!r) return '-';
    if (r.result.failed) return 'failed';
    const granted = r.result.blksize !== blksize || Math.max(r.result.windowsize, 1) !== windowsize ? ` [${r.result.blksize}/${Math.max(r.result.windowsize, 1)}]` : '';
    return `${fmt(r.mibPerS)}${granted}`;
  };
  const hpa = cells[SERVERS.indexOf('tftpd-hpa')];
  const ratios = SERVERS.includes('tftpd-hpa') ? SERVERS.filter((s) => s !== 'tftpd-hpa').map((s) => {
    const r = cells[SERVERS.indexOf(s)];
    return r && hpa && !r.result.failed && hpa.mibPerS ? `${fmt(r.mibPerS / hpa.mibPerS, 2)}x` : '-';
  }) : [];
  lines.push([String(blksize), String(windowsize), ...cells.map(show), ...ratios].map((c, i) => c.padStart(i < 2 ? 8 : W)).join(''));
}
lines.push('');
lines.push('Storm: N lockstep clients (blksize 1432, windowsize 1) fetch 1 MiB at once:');
lines.push(['server', 'N', 'last done s', 'p50 s', 'p99 s', 'failed', 'client rexmit', 'server CPU s', 'loadgen CPU s', 'vs tftpd-hpa'].map((h, i) => (i ? h.padStart(14) : h.padEnd(12))).join(''));
for (const n of STORMS) {
  const hpa = rows.find((r) => r.server === 'tftpd-hpa' && r.test === 'storm' && r.sessions === n);
  for (const s of SERVERS) {
    const r = rows.find((x) => x.server === s && x.test === 'storm' && x.sessions === n);
    if (!r) continue;
    const ratio = hpa && s !== 'tftpd-hpa' ? `${fmt(r.result.max_ms / hpa.result.max_ms, 2)}x time` : '';
    lines.push([s.padEnd(12), String(n), fmt(r.result.max_ms / 1000, 2), fmt(r.result.p50_ms / 1000, 2), fmt(r.result.p99_ms / 1000, 2), String(r.result.failed),
      // in.tftpd's children are never waited for, so their CPU time is accounted nowhere we can read.
      String(r.result.retransmits), s === 'tftpd-hpa' ? 'n/a' : fmt(r.serverCpuMs / 1000, 2), fmt(r.result.cpu_ms / 1000, 2), ratio].map((c, i) => (i ? c.padStart(14) : c)).join(''));
  }
}
lines.push('');
lines.push('Server CPU: user+system time of the server process during the run (n/a for tftpd-hpa: it forks one process per transfer and never waits for them,');
lines.push('so their time is not accounted). A load generator CPU time near the wall time would mean the generator, not the server, was the limit.');
const report = lines.join('\n');
process.stdout.write(report + '\n');
const out = path.join(RESULTS, `tftp-${started.toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ started: started.toISOString(), cpus: os.cpus().length, loadavg: os.loadavg(), rows, report }, null, 2));
process.stderr.write(`bench: results in ${path.relative(REPO, out)}\n`);
