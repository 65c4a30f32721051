/**
 * HTTP boot file benchmark: N clients fetch the same 64 MiB initrd at once,
 * from bootherd and from nginx (Debian's nginx-light, sendfile on) serving the
 * same file, side by side, inside lab network namespaces (servers in the head
 * namespace, curl in a client namespace, over the lab bridge).
 *
 * The load tool is curl --parallel (C, one process per half of the clients so
 * it can use both cores); each client fetches the file once. Throughput is
 * all bytes over the wall time of the round; p50/p99 are per-transfer times.
 * CPU seconds of servers and client are printed so a reader can see who was
 * the bottleneck.
 *
 *   node --import tsx bench/http/run.ts [--clients 100,500] [--size-mib 64]
 *   npm run bench:http
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../src/lab/netns.ts';
import { writeNginxConfig } from '../lib/reference-servers.ts';
import { cpuSeconds } from '../lib/proc.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/bootherd.mjs');
const HEAD_IP = '198.18.0.1';
const CLIENT_CIDR = '198.18.0.2/24';
const PORTS = { bootherd: 8080, nginx: 8081 } as const;
const CURL_PROCESSES = 2;
const ROUND_TIMEOUT_S = 240;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const clientCounts = arg('clients', '100,500').split(',').map(Number);
const sizeMiB = Number(arg('size-mib', '64'));

function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch { return []; }
}

async function waitForOutput(child: ChildProcess, pattern: RegExp, what: string): Promise<void> {
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 20 s:\n${seen}`)), 20_000);
    const on = (d: Buffer) => { seen += d.toString(); if (pattern.test(seen)) { clearTimeout(timer); resolve(); } };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited with ${code}:\n${seen}`)); });
  });
  child.removeAllListeners('exit');
}

interface Round { server: string; clients: number; wallS: number; bytes: number; ok: number; failed: number; failures: Record<string, number>; p50: number; p99: number; serverCpuS: number; clientCpuS: number }

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : NaN;
}

async function round(lab: Lab, dir: string, server: keyof typeof PORTS, serverPids: () => number[], clients: number, expectedSize: number): Promise<Round> {
  const url = `http://${HEAD_IP}:${PORTS[server]}/files/initrd.img`;
  const per = Math.ceil(clients / CURL_PROCESSES);
  const procs: Array<Promise<string>> = [];
  const cpu0 = serverPids().reduce((s, p) => s + cpuSeconds(p), 0);
  const start = process.hrtime.bigint();
  for (let k = 0, left = clients; k < CURL_PROCESSES && left > 0; k++, left -= per) {
    const n = Math.min(per, left);
    const cfg = path.join(dir, `curl-${server}-${clients}-${k}.cfg`);
    writeFileSync(cfg, Array.from({ length: n }, () => `url = "${url}"\noutput = "/dev/null"\n`).join(''));
    // bash's `times` prints the CPU time of its children (curl) after it exits.
    const script = `curl -s -Z --parallel-immediate --parallel-max ${n} --max-time ${ROUND_TIMEOUT_S} -w '%{http_code} %{size_download} %{time_total} %{exitcode}\\n' -K ${cfg}; times`;
    const child = lab.spawn(lab.clients[0]!.ns, 'bash', ['-c', script]);
    procs.push(new Promise((resolve) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      child.once('exit', () => resolve(out));
    }));
  }
  const outputs = await Promise.all(procs);
  const wallS = Number(process.hrtime.bigint() - start) / 1e9;
  const serverCpuS = serverPids().reduce((s, p) => s + cpuSeconds(p), 0) - cpu0;
  const times: number[] = [];
  let bytes = 0, ok = 0, failed = 0, clientCpuS = 0;
  const failures: Record<string, number> = {};
  for (const out of outputs) {
    const lines = out.trim().split('\n');
    const childTimes = lines.pop()!; // `times`: second line is the children's user and system time
    lines.pop();
    for (const m of childTimes.matchAll(/(\d+)m([\d.]+)s/g)) clientCpuS += Number(m[1]) * 60 + Number(m[2]);
    for (const l of lines) {
      const [code, size, t, exit] = l.split(' ');
      if (code === '200' && Number(size) === expectedSize) { ok++; bytes += Number(size); times.push(Number(t)); continue; }
      failed++;
      const why = `http ${code}, curl exit ${exit}`;
      failures[why] = (failures[why] ?? 0) + 1;
    }
  }
  times.sort((a, b) => a - b);
  return { server, clients, wallS, bytes, ok, failed, failures, p50: percentile(times, 50), p99: percentile(times, 99), serverCpuS, clientCpuS };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-bench-http-'));
  const files = path.join(dir, 'files');
  mkdirSync(files);
  const data = randomBytes(sizeMiB << 20);
  writeFileSync(path.join(files, 'initrd.img'), data);
  const sha = createHash('sha256').update(data).digest('hex');
  const lab = Lab.create({ prefix: `bbhttp${process.pid.toString(36)}`, clients: 1, clientCidr: () => CLIENT_CIDR });
  const cleanup = () => { lab.destroy(); rmSync(dir, { recursive: true, force: true }); };
  process.once('SIGINT', () => { cleanup(); process.exit(130); });
  try {
    // bootherd: only its HTTP service.
    const clusterFile = path.join(dir, 'cluster.yaml');
    writeFileSync(clusterFile, `
head: { address: ${HEAD_IP} }
state: ${path.join(dir, 'state')}
files: ${files}
log: { level: info }
subnets: [{ network: 198.18.0.0/24 }]
dhcp: { enabled: false }
tftp: { enabled: false }
dns: { enabled: false }
ntp: { enabled: false }
http: { address: ${HEAD_IP}, port: ${PORTS.bootherd}, readOpenTo: any }
`);
    const bootherd = lab.spawn(lab.head.ns, process.execPath, [BIN, 'serve', '--config', clusterFile]);
    await waitForOutput(bootherd, /"msg":"bootherd started"/, 'bootherd');

    // nginx: the reference, same file, sendfile, workers = cores, access log on like bootherd's.
    const ngx = path.join(dir, 'nginx');
    mkdirSync(path.join(ngx, 'files'), { recursive: true });
    const ngxConf = writeNginxConfig({
      dir: ngx, listen: `${HEAD_IP}:${PORTS.nginx}`, site: `location /files/ { alias ${files}/; }`, workerConnections: 4096,
      // send_timeout as bootherd's idle timeout: neither cuts a slow reader sooner.
      http: '  keepalive_timeout 65; send_timeout 120s;\n  types { application/octet-stream img; }',
    });
    const nginx = lab.spawn(lab.head.ns, 'nginx', ['-p', ngx, '-c', ngxConf]);
    await new Promise((r) => setTimeout(r, 1000));

    const pids = {
      bootherd: () => [bootherd.pid!],
      nginx: () => [nginx.pid!, ...childrenOf(nginx.pid!)],
    };
    // Both must serve the same bytes; this also warms bootherd's file cache and the page cache.
    for (const server of ['bootherd', 'nginx'] as const) {
      const got = lab.exec(lab.clients[0]!.ns, 'sh', ['-c', `curl -sSf --retry 5 --retry-connrefused --max-time 60 http://${HEAD_IP}:${PORTS[server]}/files/initrd.img | sha256sum`], 90_000).split(' ')[0];
      if (got !== sha) throw new Error(`${server} served different bytes (sha256 ${got}, expected ${sha})`);
    }

    const rounds: Round[] = [];
    for (const n of clientCounts) {
      for (const server of ['bootherd', 'nginx'] as const) {
        process.stderr.write(`round: ${n} clients x ${sizeMiB} MiB from ${server}...\n`);
        const r = await round(lab, dir, server, pids[server], n, data.length);
        rounds.push(r);
        if (r.failed) process.stderr.write(`  failed transfers: ${JSON.stringify(r.failures)}\n`);
      }
    }
    printTable(rounds);
    const ngxErrors = readFileSync(path.join(ngx, 'error.log'), 'utf8').trim();
    if (ngxErrors) process.stderr.write(`nginx error.log (last lines):\n${ngxErrors.split('\n').slice(-5).join('\n')}\n`);
    const resultsDir = path.join(ROOT, 'bench/results');
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(path.join(resultsDir, `http-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ sizeMiB, cpus: os.cpus().length, rounds }, null, 2));
  } finally {
    cleanup();
  }
}

function printTable(rounds: Round[]): void {
  const rows: string[][] = [['clients', 'server', 'ok/failed', 'wall s', 'MiB/s', 'p50 s', 'p99 s', 'server CPU s', 'curl CPU s', 'throughput vs nginx', 'p99 vs nginx']];
  for (const r of rounds) {
    const ref = rounds.find((x) => x.server === 'nginx' && x.clients === r.clients)!;
    const mibs = r.bytes / (1 << 20) / r.wallS;
    const refMibs = ref.bytes / (1 << 20) / ref.wallS;
    rows.push([String(r.clients), r.server, `${r.ok}/${r.failed}`, r.wallS.toFixed(1), mibs.toFixed(0), r.p50.toFixed(2), r.p99.toFixed(2), r.serverCpuS.toFixed(1), r.clientCpuS.toFixed(1),
      r.server === 'nginx' ? '1.00x' : `${(mibs / refMibs).toFixed(2)}x`, r.server === 'nginx' ? '1.00x' : `${(r.p99 / ref.p99).toFixed(2)}x`]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write([line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n') + '\n');
  process.stdout.write(`(${sizeMiB} MiB file, each client fetches it once; throughput ratio > 1 and p99 ratio < 1 favour bootherd)\n`);
}

await main();
