/**
 * DHCP load benchmark: Kea's perfdhcp runs full DORA exchanges against
 * bootherd, Kea (kea-dhcp4, memfile) and dnsmasq, one after the other, in the
 * same lab topology on the same pool. For each server it finds the highest
 * rate with at most 2.5% drops, then runs an avalanche of 10,000 clients, and
 * prints a table with ratios to Kea.
 *
 *   npm run bench:dhcp [-- --quick] [-- --servers bootherd,kea] [-- --rates 3000,6000] [-- --profile DIR]
 *   npm run bench:dhcp -- --generator c [--rcvbuf BYTES] [--broadcast]
 *
 * --generator c uses bench/dhcp/loadgen.c (compiled here) instead of
 * perfdhcp: it asks for 30,000+ DORA/s from one core, checks every reply and
 * that no address is ACKed to two MACs, and limits drops to 1%. It runs with
 * a 32 MiB receive buffer (--rcvbuf to change), and once more at the best
 * rate with the kernel's default 208 KiB, reporting the UDP RcvbufErrors of
 * the generator's and the server's namespaces. --broadcast plays clients on
 * the server's own segment (no relay; replies broadcast to port 68).
 *
 * --rates runs one trial per listed rate and prints each (for profiling a
 * server at a known load) instead of the search and the avalanche.
 *
 * perfdhcp plays a relay (giaddr = its own address), so every server sees the
 * same relayed traffic. Servers are pinned to CPU 1 and perfdhcp to CPU 0.
 * bootherd fsyncs every lease before its ACK (group commit); Kea's memfile
 * and dnsmasq's lease file are written without fsync.
 *
 * Two things about the load generator on a 2-core machine:
 * - perfdhcp plays every client on ONE socket with the default 208 KiB
 *   receive buffer. A server that answers a batch of requests with one
 *   sendmmsg (bootherd) fills that buffer faster than perfdhcp drains it and
 *   perfdhcp counts its own overflow as server drops. The bench raises
 *   net.core.rmem_default to 32 MiB while it runs (restored after), for every
 *   server alike: ten thousand real clients would have ten thousand buffers
 *   (32 MiB holds the replies to the whole 10,000-client avalanche).
 * - perfdhcp saturates its core at about 8,000 DORA/s here, so the highest
 *   rate stops saying much about a server faster than that. The bench also
 *   runs every server at one common rate, the lowest of their highest rates
 *   (so every server is near its own limit, where batching servers are at
 *   their best and per-packet ones at their worst is avoided: each is busy),
 *   and reads the server's CPU time from /proc: leases per CPU-second is
 *   what one core of that server could do, free of the load generator's limit.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../src/lab/netns.ts';
import { cpuProfileFlags, cpuTimes, stopProcess } from '../lib/proc.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(HERE, '../../bin/bootherd.mjs');
const args = process.argv.slice(2);
/** The value after `--name`, if given. */
const flag = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const GENERATOR = flag('--generator') ?? 'perfdhcp';
if (GENERATOR !== 'perfdhcp' && GENERATOR !== 'c') throw new Error(`--generator: perfdhcp or c, not ${GENERATOR}`);
const BROADCAST = args.includes('--broadcast');
if (BROADCAST && GENERATOR !== 'c') throw new Error('--broadcast needs --generator c (perfdhcp here plays a relay)');
const quick = args.includes('--quick');
const only = args.includes('--servers') ? args[args.indexOf('--servers') + 1]!.split(',') : ['bootherd', 'kea', 'dnsmasq'];
/** `--profile DIR`: bootherd writes V8 CPU profiles there (one per run of the server). */
const PROFILE = args.includes('--profile') ? path.resolve(args[args.indexOf('--profile') + 1]!) : undefined;
const TRIAL_SECONDS = quick ? 3 : 6;
const MAX_DROPS = GENERATOR === 'c' ? 1 : 2.5;
const AVALANCHE = 10_000;
const POOL = ['198.18.1.0', '198.18.250.255'];
const CLIENT_RECV_BUFFER = Number(flag('--rcvbuf') ?? 32 << 20);
/** What net.core.rmem_default gives a socket on Debian's kernels: the "default" of the buffer comparison. */
const DEFAULT_RECV_BUFFER = 212_992;
const ipv4 = (a: string) => a.split('.').reduce((n, b) => n * 256 + Number(b), 0);
const POOL_SIZE = ipv4(POOL[1]!) - ipv4(POOL[0]!) + 1;
/** The C generator's trials stay within 95% of the pool (every trial gets a fresh server, so a fresh pool). */
const trialSeconds = (rate: number) => (GENERATOR === 'c' ? Math.min(TRIAL_SECONDS, (0.95 * POOL_SIZE) / rate) : TRIAL_SECONDS);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Server { name: string; start(lab: Lab, dir: string): ChildProcess }

const servers: Server[] = [
  {
    name: 'bootherd',
    start(lab, dir) {
      writeFileSync(path.join(dir, 'cluster.yaml'), `
head: { address: 198.18.0.1 }
state: ${dir}/state
log: { level: info }
dns: { enabled: false }
ntp: { enabled: false }
tftp: { enabled: false }
http: { enabled: false }
subnets:
  - { network: 198.18.0.0/16, interface: eth0, pool: ${POOL.join('-')}, leaseTime: 1h }
`);
      return lab.spawn(lab.head.ns, 'taskset', ['-c', '1', process.execPath, ...cpuProfileFlags(PROFILE), BIN, 'serve', '--config', path.join(dir, 'cluster.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    },
  },
  {
    name: 'kea',
    start(lab, dir) {
      writeFileSync(path.join(dir, 'kea.json'), JSON.stringify({
        Dhcp4: {
          'interfaces-config': { interfaces: ['eth0'], 'dhcp-socket-type': BROADCAST ? 'raw' : 'udp' },
          'lease-database': { type: 'memfile', persist: true, name: `${dir}/kea-leases.csv`, 'lfc-interval': 0 },
          'valid-lifetime': 3600,
          subnet4: [{ subnet: '198.18.0.0/16', pools: [{ pool: POOL.join(' - ') }] }],
          loggers: [{ name: 'kea-dhcp4', severity: 'WARN', output_options: [{ output: `${dir}/kea.log` }] }],
        },
      }));
      return lab.spawn(lab.head.ns, 'taskset', ['-c', '1', 'kea-dhcp4', '-c', path.join(dir, 'kea.json')], { stdio: 'ignore', env: { ...process.env, KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir } });
    },
  },
  {
    name: 'dnsmasq',
    start(lab, dir) {
      return lab.spawn(lab.head.ns, 'taskset', ['-c', '1', 'dnsmasq', '--no-daemon', '--port=0', '--interface=eth0', '--bind-interfaces',
        `--dhcp-range=${POOL.join(',')},255.255.0.0,1h`, '--dhcp-lease-max=100000', `--dhcp-leasefile=${dir}/dnsmasq.leases`, '--dhcp-authoritative', '--quiet-dhcp'], { stdio: 'ignore' });
    },
  },
];

interface Trial {
  rate: number; achieved: number; drops: number;
  /** Leases granted during the trial (ACKs received). */
  leases: number;
  /** The C generator's own report (absent with perfdhcp). */
  gen?: LoadgenResult;
  /** UDP RcvbufErrors during the trial in the generator's and the server's namespaces. */
  rcvbufErrors?: { client: number; server: number };
  /**
   * Server CPU seconds during the trial: its own code, and the kernel working
   * for it (receiving, sending across veth and the bridge, fsync). The split
   * moves from run to run more than the sum does: the network's softirq work
   * is charged to whichever task the CPU was running at the time.
   */
  user: number; system: number;
}

/** Server CPU seconds of a trial, user + system. */
const cpuOf = (t: Trial) => t.user + t.system;

/** CPU per lease in µs, user and system. */
function perLeaseUs(t: Trial): string {
  const leases = t.leases;
  return leases ? `${((t.user * 1e6) / leases).toFixed(0)} + ${((t.system * 1e6) / leases).toFixed(0)} µs a lease` : 'no leases';
}


function parsePerfdhcp(out: string): { achieved: number; drops: number; avalancheSeconds?: number } {
  // Leases per second: ACKs received over the trial (perfdhcp's own "Rate" counts its ramp-up too).
  const acks = Number([...out.matchAll(/received packets: (\d+)/g)][1]?.[1] ?? 0);
  const achieved = acks / TRIAL_SECONDS;
  const drops = [...out.matchAll(/drops ratio: ([\d.]+) %/g)].map((m) => Number(m[1]));
  const sent = [...out.matchAll(/sent packets: (\d+)/g)].map((m) => Number(m[1]));
  const received = [...out.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
  // Drops of the whole exchange: a DISCOVER never answered also means a REQUEST never sent.
  const lost = sent.length >= 2 ? 100 * (1 - (received[1]! / Math.max(1, sent[0]!))) : 100;
  const avalanche = /Run time: ([\d.]+)\s*s/i.exec(out) ?? /([\d.]+) s(?:ec)? *total/i.exec(out);
  return { achieved, drops: Math.max(...drops, lost, 0), ...(avalanche ? { avalancheSeconds: Number(avalanche[1]) } : {}) };
}

async function withServer<T>(server: Server, fn: (lab: Lab, pid: number | undefined) => Promise<T>): Promise<T> {
  const lab = Lab.create({ prefix: `bhb${server.name.slice(0, 3)}`, headCidr: '198.18.0.1/16', clients: 1, clientCidr: () => '198.18.0.9/16' });
  const dir = mkdtempSync(path.join(os.tmpdir(), `bench-dhcp-${server.name}-`));
  let proc: ChildProcess | undefined;
  try {
    proc = server.start(lab, dir);
    if (proc.stderr) {
      // bootherd says when it listens (info level: startup lines only, nothing per packet).
      await new Promise<void>((resolve, reject) => {
        let log = '';
        const timer = setTimeout(() => reject(new Error(`${server.name} did not start:\n${log}`)), 30_000);
        proc!.stderr!.on('data', (d: Buffer) => { log += d; if (log.includes('"msg":"bootherd started"')) { clearTimeout(timer); resolve(); } });
      });
    } else {
      await sleep(1500);
    }
    if (proc.exitCode !== null) throw new Error(`${server.name} exited with ${proc.exitCode}`);
    // ip netns exec and taskset both exec: the child's pid is the server's.
    return await fn(lab, proc.pid);
  } finally {
    if (proc) await stopProcess(proc); // before the lab goes, so bootherd can write its --profile
    lab.destroy();
  }
}

function perfdhcp(lab: Lab, extra: string[], timeoutMs: number): string {
  const r = lab.run(lab.clients[0]!.ns, 'taskset', ['-c', '0', 'perfdhcp', '-4', '-l', 'eth0', ...extra, '198.18.0.1'], timeoutMs);
  return r.stdout + r.stderr;
}

/** The one-line JSON summary bench/dhcp/loadgen.c prints. */
interface LoadgenResult {
  clients: number; sent: number; offers: number; acks: number; naks: number; drops: number; drop_pct: number;
  duplicate_acks: number; duplicate_replies: number; bad_replies: number; retransmits: number;
  offered_rate: number; rate: number; wall_s: number; last_ack_s: number; p50_ms: number; p99_ms: number;
  cpu_ms: number; rcvbuf: number; rcvbuf_errors: number;
}

const loadgen = path.join(HERE, '../results/dhcp-loadgen');
if (GENERATOR === 'c') {
  mkdirSync(path.dirname(loadgen), { recursive: true });
  execFileSync('gcc', ['-O2', '-Wall', '-o', loadgen, path.join(HERE, 'loadgen.c')], { stdio: 'inherit' });
}

/** UDP RcvbufErrors so far in a namespace (/proc/net is the reader's namespace's). */
function udpRcvbufErrors(lab: Lab, ns: string): number {
  const lines = lab.exec(ns, 'cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  return Number(lines[1]?.split(/\s+/)[names.indexOf('RcvbufErrors')] ?? 0);
}

/** One run of the C generator in the client namespace (on CPU 0, like perfdhcp). */
function runLoadgen(lab: Lab, opts: { rate: number; clients: number; seconds: number; rcvbuf: number; retries?: number; window?: number }): LoadgenResult {
  const where = BROADCAST ? ['-M', 'broadcast', '-i', 'eth0'] : ['-M', 'relay', '-s', '198.18.0.1', '-g', '198.18.0.9'];
  const r = lab.run(lab.clients[0]!.ns, 'taskset', ['-c', '0', loadgen, ...where, '-P', POOL.join('-'), '-r', String(opts.rate), '-n', String(opts.clients),
    '-T', String(opts.seconds), '-t', '1000', '-R', String(opts.retries ?? 0), '-w', String(opts.window ?? 0), '-b', String(opts.rcvbuf)], (opts.seconds + 60) * 1000);
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  if (!line.startsWith('{')) throw new Error(`dhcp-loadgen failed (${r.code}): ${r.stderr}`);
  return JSON.parse(line) as LoadgenResult;
}

async function trial(server: Server, rate: number, rcvbuf = CLIENT_RECV_BUFFER): Promise<Trial> {
  return withServer(server, async (lab, pid) => {
    const before = cpuTimes(pid);
    if (GENERATOR === 'c') {
      const seconds = trialSeconds(rate);
      const errors = [udpRcvbufErrors(lab, lab.clients[0]!.ns), udpRcvbufErrors(lab, lab.head.ns)];
      const gen = runLoadgen(lab, { rate, clients: Math.floor(rate * seconds), seconds, rcvbuf });
      const after = cpuTimes(pid);
      const rcvbufErrors = { client: udpRcvbufErrors(lab, lab.clients[0]!.ns) - errors[0]!, server: udpRcvbufErrors(lab, lab.head.ns) - errors[1]! };
      return { rate, achieved: gen.rate, drops: gen.drop_pct, leases: gen.acks, gen, rcvbufErrors, user: after.user - before.user, system: after.system - before.system };
    }
    const out = perfdhcp(lab, ['-r', String(rate), '-p', String(TRIAL_SECONDS), '-R', '60000', '-W', '1000000'], (TRIAL_SECONDS + 20) * 1000);
    const after = cpuTimes(pid);
    const user = after.user - before.user;
    const system = after.system - before.system;
    const { achieved, drops } = parsePerfdhcp(out);
    return { rate, achieved, drops, leases: achieved * TRIAL_SECONDS, user, system };
  });
}

/** A trial's line on stderr: what the C generator saw besides the rate. */
const detail = (t: Trial) => (t.gen ? `, ${t.gen.naks} NAKs, ${t.gen.duplicate_acks} duplicate ACKs, ${t.gen.bad_replies} bad replies, DORA p50 ${t.gen.p50_ms.toFixed(2)} ms p99 ${t.gen.p99_ms.toFixed(2)} ms, generator CPU ${(t.gen.cpu_ms / 1000).toFixed(2)} s, RcvbufErrors client ${t.rcvbufErrors?.client} server ${t.rcvbufErrors?.server}` : '');

async function maxRate(server: Server): Promise<{ best: Trial | undefined; trials: Trial[]; generatorLimited: boolean }> {
  const trials: Trial[] = [];
  let good: Trial | undefined;
  let bad: number | undefined;
  let rate = 1000;
  // Double until drops exceed the limit, then bisect a few times.
  for (let i = 0; i < 12; i++) {
    const t = await trial(server, rate);
    trials.push(t);
    process.stderr.write(`  ${server.name} @ ${rate}/s: achieved ${t.achieved.toFixed(0)}/s, drops ${t.drops.toFixed(2)}%${detail(t)}\n`);
    if (t.drops <= MAX_DROPS) good = !good || t.achieved > good.achieved ? t : good;
    else bad = bad === undefined ? rate : Math.min(bad, rate);
    // Every exchange answered, yet well under the asked rate: perfdhcp could
    // not send faster. The server's limit is above what this machine can ask.
    if (t.drops <= MAX_DROPS && t.achieved < 0.9 * rate) return { best: good, trials, generatorLimited: true };
    if (bad === undefined) rate *= 2;
    else {
      const low = good?.rate ?? 0;
      if (bad - low <= Math.max(250, bad * 0.1)) break;
      rate = Math.round((low + bad) / 2);
    }
  }
  return { best: good, trials, generatorLimited: false };
}

async function avalanche(server: Server): Promise<{ seconds: number | undefined; leases: number; gen?: LoadgenResult }> {
  return withServer(server, async (lab) => {
    if (GENERATOR === 'c') {
      // Every client at once (as fast as one socket sends), retransmitting after 1 s up to 5 times, as perfdhcp's avalanche does.
      const gen = runLoadgen(lab, { rate: 0, clients: AVALANCHE, seconds: 60, rcvbuf: CLIENT_RECV_BUFFER, retries: 5, window: AVALANCHE });
      return { seconds: gen.last_ack_s, leases: gen.acks, gen };
    }
    const started = performance.now();
    const out = perfdhcp(lab, ['--scenario', 'avalanche', '-R', String(AVALANCHE)], 180_000);
    const wall = (performance.now() - started) / 1000;
    const received = [...out.matchAll(/received packets: (\d+)/g)].map((m) => Number(m[1]));
    return { seconds: parsePerfdhcp(out).avalancheSeconds ?? wall, leases: received[1] ?? 0 };
  });
}

// Restored on exit, including Ctrl-C.
const savedRecvBuffer = readFileSync('/proc/sys/net/core/rmem_default', 'utf8').trim();
const restoreRecvBuffer = () => { try { writeFileSync('/proc/sys/net/core/rmem_default', savedRecvBuffer); } catch { /* not root: nothing was changed */ } };
try {
  execFileSync('sysctl', ['-q', '-w', `net.core.rmem_default=${Math.max(CLIENT_RECV_BUFFER, Number(savedRecvBuffer))}`]);
} catch (e) {
  process.stderr.write(`could not raise net.core.rmem_default (${(e as Error).message.split('\n')[0]}); perfdhcp may overflow its own socket\n`);
}
process.on('exit', restoreRecvBuffer);
process.on('SIGINT', () => process.exit(130));

if (args.includes('--rates')) {
  const rates = args[args.indexOf('--rates') + 1]!.split(',').map(Number);
  for (const server of servers.filter((s) => only.includes(s.name))) {
    for (const rate of rates) {
      const t = await trial(server, rate);
      console.log(`${server.name} @ ${rate}/s: achieved ${t.achieved.toFixed(0)}/s, drops ${t.drops.toFixed(2)}%${detail(t)}, server CPU ${cpuOf(t).toFixed(2)} s (user ${t.user.toFixed(2)}, system ${t.system.toFixed(2)}; ${perLeaseUs(t)})`);
    }
  }
  process.exit(0);
}

const searched: Array<{ server: Server; best: Trial | undefined; generatorLimited: boolean }> = [];
for (const server of servers.filter((s) => only.includes(s.name))) {
  process.stderr.write(`${server.name}: searching for the highest rate with <= ${MAX_DROPS}% drops\n`);
  const { best, generatorLimited } = await maxRate(server);
  searched.push({ server, best, generatorLimited });
}
// The rate each server ran its best trial at, or what it achieved where perfdhcp could not ask for more.
const commonRate = Math.min(...searched.map((s) => (s.generatorLimited ? Math.floor(s.best?.achieved ?? 0) : s.best?.rate ?? 0)).filter((r) => r > 0));
const results: Array<{ name: string; rate: number; generatorLimited: boolean; p?: Trial; common: Trial; smallBuffer?: Trial; avalanche: Awaited<ReturnType<typeof avalanche>> }> = [];
for (const { server, best, generatorLimited } of searched) {
  const common = await trial(server, commonRate);
  process.stderr.write(`  ${server.name} @ ${commonRate}/s: ${common.achieved.toFixed(0)} leases/s, drops ${common.drops.toFixed(2)}%, server CPU ${cpuOf(common).toFixed(2)} s${detail(common)}\n`);
  // The best rate again with the receive buffer a socket gets by default: what a stock relay agent's socket would see.
  const smallBuffer = GENERATOR === 'c' && best ? await trial(server, best.rate, DEFAULT_RECV_BUFFER) : undefined;
  if (smallBuffer) process.stderr.write(`  ${server.name} @ ${best!.rate}/s with a ${DEFAULT_RECV_BUFFER}-byte receive buffer: drops ${smallBuffer.drops.toFixed(2)}%${detail(smallBuffer)}\n`);
  const av = await avalanche(server);
  process.stderr.write(`  ${server.name} avalanche of ${AVALANCHE}: ${av.leases} leases in ${av.seconds?.toFixed(1)} s${av.gen ? `, ${av.gen.retransmits} retransmissions, ${av.gen.duplicate_acks} duplicate ACKs` : ''}\n`);
  results.push({ name: server.name, rate: best?.achieved ?? 0, generatorLimited, ...(best ? { p: best } : {}), common, ...(smallBuffer ? { smallBuffer } : {}), avalanche: av });
}
/** Leases one CPU-second of the server grants, at the common rate. */
const perCpuSecond = (t: Trial) => t.leases / cpuOf(t);

const kea = results.find((r) => r.name === 'kea');
const how = GENERATOR === 'c' ? `dhcp-loadgen ${BROADCAST ? 'broadcast' : 'relayed'}, ${CLIENT_RECV_BUFFER}-byte receive buffer` : 'perfdhcp relayed';
console.log(`\nDHCP DORA, ${how}, pool /16, ${TRIAL_SECONDS}s trials, server on 1 core (${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})`);
console.log(`| server | leases/s at <=${MAX_DROPS}% drops | vs Kea | leases per CPU-second at ${commonRate}/s | vs Kea | avalanche 10k: time | leases | vs Kea |`);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const r of results) {
  const ratio = kea && kea.rate ? (r.rate / kea.rate).toFixed(2) + '×' : '-';
  const cpuRatio = kea ? (perCpuSecond(r.common) / perCpuSecond(kea.common)).toFixed(2) + '×' : '-';
  const avRatio = kea?.avalanche.seconds && r.avalanche.seconds ? (kea.avalanche.seconds / r.avalanche.seconds).toFixed(2) + '×' : '-';
  console.log(`| ${r.name}${r.name === 'bootherd' ? ' (fsync per lease, group commit)' : r.name === 'kea' ? ' (memfile, no fsync)' : ' (lease file, no fsync)'} | ${r.generatorLimited ? '≥ ' : ''}${Math.round(r.rate)} | ${r.generatorLimited ? '≥ ' : ''}${ratio} | ${Math.round(perCpuSecond(r.common))} | ${cpuRatio} | ${r.avalanche.seconds?.toFixed(2)} s | ${r.avalanche.leases} | ${avRatio} |`);
}
console.log('(≥: every exchange answered but the generator could not send faster: the load generator\'s limit, on its own core, not the server\'s.)');
if (GENERATOR === 'c') {
  console.log(`\n| server | best rate: DORA p50 / p99 ms | duplicate ACKs (all trials) | generator CPU s | RcvbufErrors client / server | same rate, ${DEFAULT_RECV_BUFFER}-byte buffer: drops | RcvbufErrors client / server | avalanche retransmissions |`);
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const b = r.p; const sb = r.smallBuffer;
    const dups = [r.p, r.common, r.smallBuffer].reduce((n, t) => n + (t?.gen?.duplicate_acks ?? 0), r.avalanche.gen?.duplicate_acks ?? 0);
    console.log(`| ${r.name} | ${b?.gen ? `${b.gen.p50_ms.toFixed(2)} / ${b.gen.p99_ms.toFixed(2)}` : '-'} | ${dups} | ${b?.gen ? (b.gen.cpu_ms / 1000).toFixed(2) : '-'} | ${b?.rcvbufErrors ? `${b.rcvbufErrors.client} / ${b.rcvbufErrors.server}` : '-'} | ${sb ? `${sb.drops.toFixed(2)}%` : '-'} | ${sb?.rcvbufErrors ? `${sb.rcvbufErrors.client} / ${sb.rcvbufErrors.server}` : '-'} | ${r.avalanche.gen?.retransmits ?? '-'} |`);
  }
}
