/**
 * Telemetry benchmark: telegraf-shaped batches (1000 lines, gzip, as
 * outputs.influxdb sends them by default) posted from a client namespace,
 * straight to influxd and through bootherd's /write, in the same run. Three
 * heads (ha, hb, hc: each a namespace with its own bootherd and its own
 * influxd, all in `heads:`); the load goes to ha, which queues every batch
 * for its own influxd and for hb and hc (whose bootherds write it to theirs).
 * Reports the points per second accepted by ha (checked and fsynced to all
 * three queues before each 204), delivered to ha's influxd and to each other
 * head's influxd (until `influx` counts every point), ha's CPU seconds per
 * 100,000 points, and the load average before and after.
 *
 *   node --import tsx bench/telemetry/run.ts [--batches 1000] [--lines 1000] [--concurrency 8] [--heads 2] [--rounds 3] [--profile DIR]
 *   npm run bench:telemetry
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, type LabHost } from '../../src/lab/netns.ts';
import { createInfluxd, type Influxd } from '../../test/helpers/influxd.ts';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/bootherd.mjs');
const TOKEN = 'bench-telemetry-ingest-token-0123456789abcdef';
/** --heads N: how many other heads ha relays to (default 2). */
const others = Math.max(0, Math.min(2, arg('heads', '2')));
const NAMES = ['ha', 'hb', 'hc'].slice(0, 1 + others);

function arg(name: string, fallback: string): number {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback);
}
const batches = arg('batches', '1000');
const lines = arg('lines', '1000');
const concurrency = arg('concurrency', '8');
/** --rounds N: direct then relayed, N times over (the machine's load varies between them: medians are reported). */
const rounds = Math.max(1, arg('rounds', '3'));
const profileAt = process.argv.indexOf('--profile');
/** --profile DIR: ha's bootherd runs with --cpu-prof, its .cpuprofile written to DIR when it stops. */
const profileDir = profileAt > 0 ? path.resolve(process.argv[profileAt + 1] ?? 'bench-profile') : undefined;

/** User+system CPU seconds of a process so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
}
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const lab = Lab.create({ prefix: `bht${process.pid.toString(36)}`, clients: 1, clientCidr: () => '198.18.0.11/24' });
const servers: ChildProcess[] = [];
const influx: Influxd[] = [];
// Three influxd data directories and three queues of 1M points a round: removed at the end (--profile's DIR is kept).
const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-bench-telemetry-'));
try {
  const hosts: LabHost[] = [lab.head, ...NAMES.slice(1).map((n, k) => lab.addHost(n, { mac: `52:54:00:a0:00:0${k + 2}`, cidr: `198.18.0.${k + 2}/24` }))];
  for (let i = 0; i < NAMES.length; i++) {
    const name = NAMES[i]!;
    const address = `198.18.0.${i + 1}`;
    const state = path.join(dir, name, 'state');
    mkdirSync(state, { recursive: true });
    // Heads relay to each other with the ingest token: the same file on every head.
    writeFileSync(path.join(state, 'ingest-token'), TOKEN + '\n', { mode: 0o600 });
    // Each influxd on its head's address: the direct writes go there from the client namespace.
    const db = createInfluxd(lab, hosts[i]!.ns, address, path.join(dir, name, 'influxdb'));
    await db.start();
    db.query('CREATE DATABASE telegraf');
    influx.push(db);
    const config = path.join(dir, name, 'cluster.yaml');
    writeFileSync(config, `
cluster: { domain: bench.test }
head: { name: ${name}, address: ${address} }
${NAMES.length > 1 ? `heads:\n${NAMES.map((n, k) => `  - { name: ${n}, address: 198.18.0.${k + 1} }`).join('\n')}` : ''}
state: ${state}
subnets: [{ network: 198.18.0.0/24 }]
dhcp: { enabled: false }
dns: { enabled: false }
ntp: { enabled: false }
tftp: { enabled: false }
telemetry: { influxdb: "${db.url}", selfInterval: 0, maxBackoff: 1 }
`);
    const server = lab.spawn(hosts[i]!.ns, process.execPath, [...(profileDir && i === 0 ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), BIN, 'serve', '--config', config]);
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => reject(new Error(`bootherd ${name} did not start:\n${log}`)), 30_000);
      server.stderr!.on('data', (d: Buffer) => { log += d.toString(); if (log.includes('"msg":"bootherd started"')) { clearTimeout(timer); resolve(); } });
    });
  }
  const count = (db: Influxd, m: string): number => {
    try { return (db.rows(`SELECT count("usage_user") FROM "${m}"`, 'telegraf')[0]?.[1] as number | undefined) ?? 0; } catch { return 0; }
  };
  type Load = { points: number; seconds: number; failures: number };
  const load = async (url: string, m: string): Promise<Load> => {
    const { stdout } = await execFileAsync('ip', ['netns', 'exec', lab.clients[0]!.ns, process.execPath, '--import', 'tsx', path.join(ROOT, 'bench/telemetry/load.ts'), url, TOKEN, m, String(batches), String(lines), String(concurrency)],
      { encoding: 'utf8', cwd: ROOT, timeout: 600_000 });
    return JSON.parse(stdout) as Load;
  };
  const total = batches * lines;
  const rate = (p: number, s: number): string => Math.round(p / s).toLocaleString('en-US');

  const per100k = (c: number): string => (c / (total / 100_000)).toFixed(3);
  const median = (xs: number[]): number => { const v = [...xs].sort((x, y) => x - y); return v.length % 2 ? v[v.length >> 1]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2; };
  console.log(`${new Date().toISOString()}; ${batches} batches x ${lines} lines, gzip, ${concurrency} at a time; ${NAMES.length} head(s); ${rounds} round(s) of direct then relayed; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'})`);
  const results: Array<{ direct: number; all: number; accepted: number; delivered: number[]; cpu: number[] }> = [];
  for (let round = 1; round <= rounds; round++) {
    const loadBefore = loadavg();
    // Each round its own measurements, so a round's counts are its own points.
    const influxCpu = (): number[] => influx.map((db) => cpuSeconds(db.proc!.pid!));
    const d0 = influxCpu();
    const direct = await load(`http://198.18.0.1:8086/write?db=telegraf`, `direct${round}`);
    const directInfluxCpu = influxCpu()[0]! - d0[0]!;
    const directCount = count(influx[0]!, `direct${round}`);
    // What the relay replaces: the client writing every batch to every head's influxd itself (all at once).
    const all = NAMES.length > 1 ? await Promise.all(influx.map((db) => load(`${db.url}/write?db=telegraf`, `directall${round}`))) : undefined;
    const allRate = all ? total / Math.max(...all.map((a) => a.seconds)) : undefined;
    const allCount = all ? influx.map((db) => count(db, `directall${round}`)) : undefined;
    const cpu0 = servers.map((s) => cpuSeconds(s.pid!));
    const i0 = influxCpu();
    const t0 = Date.now();
    const relayed = await load(`http://198.18.0.1/write?db=telegraf`, `relayed${round}`);
    // Poll each head's influxd until it has every point (bounded: 5 minutes).
    const done: Array<{ points: number; seconds: number }> = NAMES.map(() => ({ points: 0, seconds: 0 }));
    for (let tries = 0; tries < 1200 && done.some((d) => d.points < total); tries++) {
      for (let i = 0; i < NAMES.length; i++) {
        if (done[i]!.points >= total) continue;
        done[i] = { points: count(influx[i]!, `relayed${round}`), seconds: (Date.now() - t0) / 1000 };
      }
      if (done.some((d) => d.points < total)) await new Promise((r) => setTimeout(r, 250));
    }
    const cpu = servers.map((s, i) => cpuSeconds(s.pid!) - cpu0[i]!);
    const relayedInfluxCpu = influxCpu().map((c, i) => c - i0[i]!);
    const directRate = direct.points / direct.seconds;
    const ratio = (r: number): string => `${(r / directRate).toFixed(2)}x` + (allRate ? `, ${(r / allRate).toFixed(2)}x of every-influxd` : '');
    const accepted = relayed.points / relayed.seconds;
    const delivered = done.map((d) => d.points / d.seconds);
    results.push({ direct: directRate, all: allRate ?? directRate, accepted, delivered, cpu });
    console.log(`round ${round}: load average before ${loadBefore}, after ${loadavg()}`);
    console.log(`  straight to ha's influxd:   ${rate(direct.points, direct.seconds)} points/s written (${directCount}/${total} stored, ${direct.failures} failed)`);
    if (all && allRate) console.log(`  straight to every influxd:  ${rate(allRate, 1)} points/s each (the same batches to all ${NAMES.length} at once; ${allCount!.join('/')} of ${total} stored, ${all.reduce((n, a) => n + a.failures, 0)} failed)`);
    console.log(`  ha /write accepted:         ${rate(relayed.points, relayed.seconds)} points/s, ${ratio(accepted)} (checked, on disk in ${NAMES.length} queue(s), 204; ${relayed.failures} failed)`);
    for (let i = 0; i < NAMES.length; i++) {
      console.log(`  delivered to ${NAMES[i]}'s influxd:  ${rate(done[i]!.points, done[i]!.seconds)} points/s, ${ratio(delivered[i]!)} (${done[i]!.points}/${total} stored, ${done[i]!.seconds.toFixed(1)} s from the first POST)`);
    }
    console.log(`  CPU s per 100k points: ${NAMES.map((n, i) => `${n} ${per100k(cpu[i]!)}`).join(', ')} (ha: accept + ${NAMES.length} deliveries; others: take ha's relay, write their influxd)`);
    console.log(`  influxd CPU s per 100k points: direct ${per100k(directInfluxCpu)}; relayed ${NAMES.map((n, i) => `${n} ${per100k(relayedInfluxCpu[i]!)}`).join(', ')}`);
  }
  if (rounds > 1) {
    const m = (f: (r: typeof results[number]) => number): string => Math.round(median(results.map(f))).toLocaleString('en-US');
    const mr = (f: (r: typeof results[number]) => number): string => `${median(results.map((r) => f(r) / r.direct)).toFixed(2)}x` +
      (NAMES.length > 1 ? `, ${median(results.map((r) => f(r) / r.all)).toFixed(2)}x` : '');
    console.log(`median of ${rounds} rounds (ratios: of the same round's direct write${NAMES.length > 1 ? ', of its write to every influxd' : ''}): direct ${m((r) => r.direct)}/s; ` +
      (NAMES.length > 1 ? `to every influxd ${m((r) => r.all)}/s each; ` : '') + `accepted ${m((r) => r.accepted)}/s (${mr((r) => r.accepted)}); ` +
      NAMES.map((n, i) => `delivered ${n} ${m((r) => r.delivered[i]!)}/s (${mr((r) => r.delivered[i]!)})`).join('; ') +
      `; ha CPU ${median(results.map((r) => r.cpu[0]!)).toFixed(2)} s per ${total} points = ${per100k(median(results.map((r) => r.cpu[0]!)))} s per 100k`);
  }
} finally {
  for (const s of servers) s.kill('SIGTERM');
  await Promise.all(servers.map((s) => (s.exitCode === null ? new Promise((r) => s.once('exit', r)) : undefined)));
  for (const db of influx) await db.stop();
  lab.destroy();
  rmSync(dir, { recursive: true, force: true });
}
