/**
 * DHCP with several heads against Kea (issue 18), in one run, on one pool,
 * with the C load generator (bench/dhcp/loadgen.c): bootherd on 1 head with
 * the embedded store, 1 head on etcd (its own member), 3 heads on etcd (a
 * member each), Kea 2.2 memfile, and a Kea HA hot-standby pair. The servers
 * live in namespaces 198.18.0.1-3/16 on one bridge; the generator is a client
 * namespace (198.18.0.9) on the same bridge.
 *
 *   npm run bench:dhcp:heads [-- --quick] [-- --systems embedded,etcd1,etcd3,kea,kea-ha]
 *     [--first-rate 250] [--server-cpus 1] [--profile DIR]
 *
 * For each system, each phase starts from fresh servers (a fresh pool):
 * - relayed: the generator is a relay agent forwarding every message to every
 *   server (-s A,B,C); the offered rate steps up (x2 from 250/s) until drops
 *   pass 1%, then once back to 3/4 of the rate that failed. Reported: the highest rate at <= 1% drops, and the server CPU per
 *   lease at it (utime+stime of every server process and etcd member).
 * - broadcast: the same steps with clients on the servers' segment.
 * - avalanche: 10,000 clients at once (relayed, 5 retransmissions after 1 s).
 * - small buffer: the best relayed rate with the generator's socket at the
 *   kernel default 208 KiB instead of 32 MiB; UDP RcvbufErrors per namespace.
 * Every phase counts duplicate ACKs (an address ACKed to two MACs). Servers
 * (and their etcd members) are pinned to CPU 1, the generator to CPU 0.
 * After the systems: fdatasync latency of the state disk (bench/lib/disk.ts)
 * and the claim transaction's latency (bench/store/claims.ts).
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../src/lab/netns.ts';
import { fdatasyncLatencies, quantile } from '../lib/disk.ts';
import { cpuProfileFlags, cpuTimes, stopProcess } from '../lib/proc.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(HERE, '../../bin/bootherd.mjs');
const LOADGEN = path.join(HERE, '../results/dhcp-loadgen');
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const QUICK = args.includes('--quick');
const SYSTEMS = (flag('--systems') ?? 'embedded,etcd1,etcd3,kea,kea-ha').split(',');
const STEP_SECONDS = QUICK ? 2 : 3;
/** The first offered rate of the steps (x2 from there). */
const FIRST_RATE = Number(flag('--first-rate') ?? 250);
/** After start, settle this long, then measure the idle servers' CPU as long again. */
const IDLE_SECONDS = 3;
/** Where the servers (and their etcd members) run: `--server-cpus 0,1` shares the generator's core too. */
const SERVER_CPUS = flag('--server-cpus') ?? '1';
/** `--profile DIR`: every bootherd head writes a V8 CPU profile there when it stops. */
const PROFILE = flag('--profile') ? path.resolve(flag('--profile')!) : undefined;
const MAX_DROP_PCT = 1;
const AVALANCHE = 10_000;
const POOL = '198.18.1.0-198.18.250.255';
const POOL_SIZE = 250 * 256;
const BIG_BUFFER = 32 << 20;
const DEFAULT_BUFFER = 212_992;
const ADDRESSES = ['198.18.0.1', '198.18.0.2', '198.18.0.3'];
const GIADDR = '198.18.0.9';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Servers of one system, started fresh for one phase. */
interface Running {
  /** Every process whose CPU counts: servers and their etcd members. */
  pids(): number[];
  readonly addresses: readonly string[];
  /** bootherd's DHCP drop and unanswered counters, summed over heads (non-zero only). */
  counters?(): string;
  stop(): Promise<void>;
}

interface System { name: string; label: string; start(lab: Lab, dir: string, hosts: string[]): Promise<Running> }

/** Direct and indirect children of a process (bootherd's etcd member). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of execFileSync('ls', [`/proc/${pid}/task`], { encoding: 'utf8' }).split(/\s+/).filter(Boolean)) {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number)) out.push(c, ...descendants(c));
    }
  } catch { /* gone */ }
  return out;
}

function waitFor(proc: ChildProcess, what: string, text: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not log ${text} in ${timeoutMs / 1000} s:\n${log.slice(-3000)}`)), timeoutMs);
    proc.stderr!.on('data', (d: Buffer) => { log += d; if (log.includes(text)) { clearTimeout(timer); resolve(); } });
    proc.once('exit', (c) => { clearTimeout(timer); reject(new Error(`${what} exited with ${c}:\n${log.slice(-3000)}`)); });
  });
}

// HTTP stays on for /metrics: the DHCP drop counters say why a phase lost exchanges.
const quiet = 'log: { level: info }\ndns: { enabled: false }\nntp: { enabled: false }\ntftp: { enabled: false }\n';
const subnet = `subnets:\n  - { network: 198.18.0.0/16, interface: eth0, pool: ${POOL}, leaseTime: 1h }\n`;

async function bootherd(lab: Lab, dir: string, hosts: string[], count: number, etcd: boolean): Promise<Running> {
  const names = ['ha', 'hb', 'hc'].slice(0, count);
  const procs = names.map((name, i) => {
    const state = path.join(dir, name);
    mkdirSync(state, { recursive: true });
    const cluster = etcd
      ? `cluster: { name: bench, domain: lab.test }\nhead: { name: ${name}, address: ${ADDRESSES[i]} }\nheads:\n${names.map((n, k) => `  - { name: ${n}, address: ${ADDRESSES[k]} }`).join('\n')}\nstore: { kind: etcd }\n`
      : `head: { address: ${ADDRESSES[i]} }\n`;
    writeFileSync(path.join(state, 'cluster.yaml'), `${cluster}state: ${state}/state\n${quiet}${subnet}`);
    const p = lab.spawn(hosts[i]!, 'taskset', ['-c', SERVER_CPUS, process.execPath, ...cpuProfileFlags(PROFILE), BIN, 'serve', '--config', path.join(state, 'cluster.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
    p.stderr!.pipe(createWriteStream(path.join(state, 'bootherd.log')));
    return p;
  });
  // A new etcd cluster needs a quorum of its members: every head at once.
  await Promise.all(procs.map((p, i) => waitFor(p, `head ${names[i]}`, '"msg":"bootherd started"', 90_000)));
  const token = (i: number) => readFileSync(path.join(dir, names[i]!, 'state', 'api-token'), 'utf8').trim();
  if (count > 1) {
    // Measure the steady state: until every head's registry sees every head, two heads can each leave a client to the other.
    const end = Date.now() + 60_000;
    const seesAll = (i: number) => {
      const r = lab.run(lab.clients[0]!.ns, 'curl', ['-sS', '--max-time', '5', '-H', `authorization: Bearer ${token(i)}`, `http://${ADDRESSES[i]}/api/v1/status`], 10_000);
      try {
        const heads = (JSON.parse(r.stdout) as { services: { heads?: { heads: { alive: boolean }[] } } }).services.heads?.heads ?? [];
        return heads.filter((h) => h.alive).length === count;
      } catch { return false; }
    };
    while (!names.every((_, i) => seesAll(i))) {
      if (Date.now() > end) throw new Error(`the ${count} heads did not all see each other alive within 60 s`);
      await sleep(250);
    }
  }
  return {
    pids: () => procs.flatMap((p) => [p.pid!, ...descendants(p.pid!)]),
    addresses: ADDRESSES.slice(0, count),
    counters: () => {
      const sum = new Map<string, number>();
      names.forEach((_, i) => {
        const r = lab.run(lab.clients[0]!.ns, 'curl', ['-sS', '--max-time', '5', '-H', `authorization: Bearer ${token(i)}`, `http://${ADDRESSES[i]}/metrics`], 10_000);
        for (const m of r.stdout.matchAll(/^(bootherd_dhcp_(?:dropped|unanswered)_total\{[^}]*\}) (\d+)/gm)) sum.set(m[1]!, (sum.get(m[1]!) ?? 0) + Number(m[2]));
      });
      return [...sum].filter(([, n]) => n > 0).map(([k, n]) => `${k.replace('bootherd_dhcp_', '')} ${n}`).join(', ');
    },
    stop: async () => { await Promise.all(procs.map((p) => stopProcess(p))); },
  };
}

const keaEnv = (dir: string) => ({ ...process.env, KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir });
const HOOKS = '/usr/lib/x86_64-linux-gnu/kea/hooks';

function keaConfig(dir: string, name: string, extra: object): string {
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({
    Dhcp4: {
      'interfaces-config': { interfaces: ['eth0'], 'dhcp-socket-type': 'raw' },
      'lease-database': { type: 'memfile', persist: true, name: `${dir}/${name}-leases.csv`, 'lfc-interval': 0 },
      'valid-lifetime': 3600,
      subnet4: [{ id: 1, subnet: '198.18.0.0/16', pools: [{ pool: POOL.replace('-', ' - ') }] }],
      loggers: [{ name: 'kea-dhcp4', severity: 'WARN', output_options: [{ output: `${dir}/${name}.log` }] }],
      ...extra,
    },
  }));
  return file;
}

/** Kea HA state of a peer, through its HA hook's own HTTP listener. */
function haState(lab: Lab, ns: string, address: string): string {
  const r = lab.run(ns, 'curl', ['-sS', '--max-time', '2', '-H', 'content-type: application/json', '-d', '{"command":"ha-heartbeat","service":["dhcp4"]}', `http://${address}:8001/`], 5000);
  return /"state":\s*"([^"]+)"/.exec(r.stdout)?.[1] ?? `? ${r.stdout.slice(0, 200)}${r.stderr.slice(0, 200)}`;
}

const systems: System[] = [
  { name: 'embedded', label: 'bootherd, 1 head, embedded store', start: (lab, dir, hosts) => bootherd(lab, dir, hosts, 1, false) },
  { name: 'etcd1', label: 'bootherd, 1 head on etcd (1 member)', start: (lab, dir, hosts) => bootherd(lab, dir, hosts, 1, true) },
  { name: 'etcd3', label: 'bootherd, 3 heads on etcd (3 members)', start: (lab, dir, hosts) => bootherd(lab, dir, hosts, 3, true) },
  {
    name: 'kea', label: 'Kea 2.2 memfile (no fsync)',
    async start(lab, dir, hosts) {
      const p = lab.spawn(hosts[0]!, 'taskset', ['-c', SERVER_CPUS, 'kea-dhcp4', '-c', keaConfig(dir, 'kea', {})], { stdio: 'ignore', env: keaEnv(dir) });
      await sleep(1500);
      if (p.exitCode !== null) throw new Error(`kea-dhcp4 exited with ${p.exitCode}`);
      return { pids: () => [p.pid!], addresses: ADDRESSES.slice(0, 1), stop: () => stopProcess(p) };
    },
  },
  {
    name: 'kea-ha', label: 'Kea 2.2 HA hot-standby pair, memfile',
    async start(lab, dir, hosts) {
      // Kea 2.2's multi-threaded HA talks to its peer over the hook's own HTTP listener (no kea-ctrl-agent); it needs the DHCP server multi-threaded.
      const peers = [{ name: 'primary', url: `http://${ADDRESSES[0]}:8001/`, role: 'primary' }, { name: 'standby', url: `http://${ADDRESSES[1]}:8001/`, role: 'standby' }];
      const procs = peers.map((peer, i) => lab.spawn(hosts[i]!, 'taskset', ['-c', SERVER_CPUS, 'kea-dhcp4', '-c', keaConfig(dir, peer.name, {
        'multi-threading': { 'enable-multi-threading': true, 'thread-pool-size': 2, 'packet-queue-size': 64 },
        'hooks-libraries': [{ library: `${HOOKS}/libdhcp_lease_cmds.so` }, {
          library: `${HOOKS}/libdhcp_ha.so`,
          parameters: { 'high-availability': [{
            'this-server-name': peer.name, mode: 'hot-standby', 'heartbeat-delay': 1000, 'max-response-delay': 5000, 'max-ack-delay': 5000, 'max-unacked-clients': 0,
            'multi-threading': { 'enable-multi-threading': true, 'http-dedicated-listener': true, 'http-listener-threads': 1, 'http-client-threads': 1 },
            peers: peers.map((p) => ({ name: p.name, url: p.url, role: p.role, 'auto-failover': true })),
          }] },
        }],
      })], { stdio: 'ignore', env: keaEnv(dir) }));
      const end = Date.now() + 60_000;
      let states: string[] = [];
      for (;;) {
        states = procs.map((_, i) => haState(lab, hosts[i]!, ADDRESSES[i]!));
        if (states.every((s) => s === 'hot-standby')) break;
        if (Date.now() > end || procs.some((p) => p.exitCode !== null)) { await Promise.all(procs.map((p) => stopProcess(p))); throw new Error(`Kea HA pair not in hot-standby: ${states.join(', ')}`); }
        await sleep(500);
      }
      return { pids: () => procs.map((p) => p.pid!), addresses: ADDRESSES.slice(0, 2), stop: async () => { await Promise.all(procs.map((p) => stopProcess(p))); } };
    },
  },
];

/** The one-line JSON summary of bench/dhcp/loadgen.c. */
interface LoadgenResult {
  clients: number; acks: number; naks: number; drops: number; drop_pct: number; duplicate_acks: number; bad_replies: number;
  retransmits: number; rate: number; last_ack_s: number; p50_ms: number; p99_ms: number; cpu_ms: number; rcvbuf: number;
}

/** UDP RcvbufErrors so far in a namespace. */
function rcvbufErrors(lab: Lab, ns: string): number {
  const lines = lab.exec(ns, 'cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Udp:'));
  return Number(lines[1]?.split(/\s+/)[lines[0]!.split(/\s+/).indexOf('RcvbufErrors')] ?? 0);
}

interface Trial { gen: LoadgenResult; cpu: number; errors: { client: number; servers: number } }

/** CPU seconds so far of every process of a system. */
const cpuOf = (srv: Running) => srv.pids().reduce((s, pid) => { const t = cpuTimes(pid); return s + t.user + t.system; }, 0);

let seed = 1;
/** One generator run against running servers, with the servers' CPU and every namespace's receive-buffer errors. */
function trial(lab: Lab, srv: Running, hosts: string[], o: { broadcast: boolean; rate: number; clients: number; seconds: number; rcvbuf: number; retries: number }): Trial {
  const client = lab.clients[0]!.ns;
  const cpu = () => cpuOf(srv);
  const errs = () => ({ client: rcvbufErrors(lab, client), servers: hosts.reduce((s, ns) => s + rcvbufErrors(lab, ns), 0) });
  const where = o.broadcast ? ['-M', 'broadcast', '-i', 'eth0'] : ['-M', 'relay', '-s', srv.addresses.join(','), '-g', GIADDR];
  const e0 = errs(); const c0 = cpu();
  const r = lab.run(client, 'taskset', ['-c', '0', LOADGEN, ...where, '-P', POOL, '-r', String(o.rate), '-n', String(o.clients), '-T', String(o.seconds),
    '-t', '1000', '-R', String(o.retries), '-b', String(o.rcvbuf), '-S', String(seed++)], (o.seconds + 90) * 1000);
  const c1 = cpu(); const e1 = errs();
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  if (!line.startsWith('{')) throw new Error(`dhcp-loadgen failed (${r.code}): ${r.stderr}`);
  return { gen: JSON.parse(line) as LoadgenResult, cpu: c1 - c0, errors: { client: e1.client - e0.client, servers: e1.servers - e0.servers } };
}

const describe = (t: Trial) => `${t.gen.rate.toFixed(0)}/s, drops ${t.gen.drop_pct.toFixed(2)}%, ${t.gen.duplicate_acks} dup ACKs, ${t.gen.naks} NAKs, ${t.gen.bad_replies} bad, server CPU ${t.cpu.toFixed(2)} s, DORA p50/p99 ${t.gen.p50_ms.toFixed(1)}/${t.gen.p99_ms.toFixed(1)} ms, RcvbufErrors client ${t.errors.client} servers ${t.errors.servers}`;

/** Rates stepped x2 from 250/s on one fresh pool until drops pass 1% (or the pool would run out), then one step at 3/4 of the failing rate; the best passing trial. */
function steps(lab: Lab, srv: Running, hosts: string[], broadcast: boolean, log: (s: string) => void): Trial | undefined {
  let best: Trial | undefined;
  let used = 0;
  const run = (rate: number) => {
    const t = trial(lab, srv, hosts, { broadcast, rate, clients: rate * STEP_SECONDS, seconds: STEP_SECONDS, rcvbuf: BIG_BUFFER, retries: 0 });
    used += t.gen.acks;
    log(`    @ ${rate}/s: ${describe(t)}`);
    if (t.gen.drop_pct <= MAX_DROP_PCT && (!best || t.gen.rate > best.gen.rate)) best = t;
    return t.gen.drop_pct <= MAX_DROP_PCT;
  };
  let rate = FIRST_RATE;
  while (used + rate * STEP_SECONDS <= 0.9 * POOL_SIZE && run(rate)) rate *= 2;
  // One step halfway back from the first rate that failed.
  const between = Math.floor((rate * 0.75) / 25) * 25;
  if (rate > FIRST_RATE && used + between * STEP_SECONDS <= 0.9 * POOL_SIZE) run(between);
  return best;
}

interface Row { system: System; idle?: number; relayed?: Trial; broadcast?: Trial; avalanche?: Trial; small?: Trial; big?: Trial; error?: string }

const log = (s: string) => process.stderr.write(`${s}\n`);
const loadBefore = os.loadavg();
mkdirSync(path.dirname(LOADGEN), { recursive: true });
execFileSync('gcc', ['-O2', '-Wall', '-o', LOADGEN, path.join(HERE, 'loadgen.c')], { stdio: 'inherit' });
const lab = Lab.create({ prefix: `bhdh${process.pid.toString(36)}`, headCidr: `${ADDRESSES[0]}/16`, clients: 1, clientCidr: () => `${GIADDR}/16` });
const hosts = [lab.head.ns, lab.addHost('hb', { mac: '52:54:00:a0:00:02', cidr: `${ADDRESSES[1]}/16` }).ns, lab.addHost('hc', { mac: '52:54:00:a0:00:03', cidr: `${ADDRESSES[2]}/16` }).ns];
const root = mkdtempSync(path.join(os.tmpdir(), 'bench-dhcp-heads-'));
const rows: Row[] = [];
process.on('SIGINT', () => { lab.destroy(); process.exit(130); });
try {
  for (const system of systems.filter((s) => SYSTEMS.includes(s.name))) {
    const row: Row = { system };
    rows.push(row);
    /** Fresh servers for one phase, stopped after. */
    const phase = async <T>(name: string, fn: (srv: Running) => T | Promise<T>): Promise<T> => {
      log(`${system.name}: ${name}`);
      const srv = await system.start(lab, mkdtempSync(path.join(root, `${system.name}-`)), hosts);
      try { return await fn(srv); } finally {
        if (srv.counters) log(`    counters: ${srv.counters() || 'none'}`);
        await srv.stop();
      }
    };
    try {
      row.idle = await phase('idle', async (srv) => {
        await sleep(IDLE_SECONDS * 1000);
        const c0 = cpuOf(srv);
        await sleep(IDLE_SECONDS * 1000);
        return (cpuOf(srv) - c0) / IDLE_SECONDS;
      });
      log(`    idle: ${row.idle.toFixed(3)} CPU-seconds a second`);
      row.relayed = await phase('relayed steps', (srv) => steps(lab, srv, hosts, false, log));
      row.broadcast = await phase('broadcast steps', (srv) => steps(lab, srv, hosts, true, log));
      row.avalanche = await phase(`avalanche of ${AVALANCHE}`, (srv) => trial(lab, srv, hosts, { broadcast: false, rate: 0, clients: AVALANCHE, seconds: 60, rcvbuf: BIG_BUFFER, retries: 5 }));
      log(`    ${describe(row.avalanche)}, last ACK at ${row.avalanche.gen.last_ack_s.toFixed(2)} s, ${row.avalanche.gen.retransmits} retransmissions`);
      const rate = row.relayed ? Math.round(row.relayed.gen.rate / 500) * 500 || 500 : 500;
      [row.small, row.big] = await phase(`${rate}/s with ${DEFAULT_BUFFER} vs ${BIG_BUFFER} bytes of receive buffer`, (srv) => {
        const o = { broadcast: false, rate, clients: rate * STEP_SECONDS, seconds: STEP_SECONDS, retries: 0 };
        const small = trial(lab, srv, hosts, { ...o, rcvbuf: DEFAULT_BUFFER });
        const big = trial(lab, srv, hosts, { ...o, rcvbuf: BIG_BUFFER });
        log(`    default buffer: ${describe(small)}\n    32 MiB buffer: ${describe(big)}`);
        return [small, big] as const;
      });
    } catch (e) {
      row.error = (e as Error).message.split('\n')[0];
      log(`  ${system.name} failed: ${row.error}`);
    }
  }
} finally {
  lab.destroy();
}

const syncs = fdatasyncLatencies(root);
log('claim transaction latency (bench/store/claims.ts --n 1000):');
const claims = execFileSync(process.execPath, ['--import', 'tsx', path.join(HERE, '../store/claims.ts'), '--n', '1000'], { encoding: 'utf8' });

const rate = (t?: Trial) => (t ? `${Math.round(t.gen.rate)}` : '-');
const perLease = (t?: Trial) => (t && t.gen.acks ? `${Math.round((t.cpu * 1e6) / t.gen.acks)}` : '-');
const dups = (r: Row) => [r.relayed, r.broadcast, r.avalanche, r.small, r.big].reduce((n, t) => n + (t?.gen.duplicate_acks ?? 0), 0);
console.log(`\nDHCP DORA, several heads (${new Date().toISOString().slice(0, 16)} UTC, ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'cpu'}), load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`servers on CPU ${SERVER_CPUS}, dhcp-loadgen on CPU 0, ${STEP_SECONDS} s steps x2 from ${FIRST_RATE}/s, pool ${POOL}; state disk fdatasync (4 KiB) p50 ${quantile(syncs, 0.5).toFixed(2)} ms, p99 ${quantile(syncs, 0.99).toFixed(2)} ms`);
console.log(`| system | relayed DORA/s at <=1% drops | CPU µs/lease | broadcast DORA/s | CPU µs/lease | avalanche 10k: s (leases) | duplicate ACKs | ${DEFAULT_BUFFER} B buffer: drops, RcvbufErrors client/servers | 32 MiB: drops, RcvbufErrors |`);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  if (r.error && !r.relayed) { console.log(`| ${r.system.label} | failed: ${r.error} |||||||`); continue; }
  const buf = (t?: Trial) => (t ? `${t.gen.drop_pct.toFixed(2)}% at ${t.gen.rate.toFixed(0)}/s, ${t.errors.client}/${t.errors.servers}` : '-');
  const av = r.avalanche ? `${r.avalanche.gen.last_ack_s.toFixed(2)} (${r.avalanche.gen.acks})` : '-';
  console.log(`| ${r.system.label} | ${rate(r.relayed)} | ${perLease(r.relayed)} | ${rate(r.broadcast)} | ${perLease(r.broadcast)} | ${av} | ${dups(r)} | ${buf(r.small)} | ${buf(r.big)} |`);
}
console.log(`\n${claims.trim()}`);
