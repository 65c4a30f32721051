/**
 * Telemetry benchmark: telegraf-shaped batches (1000 lines, gzip, as
 * outputs.influxdb sends them by default) posted from a client namespace,
 * straight to influxd and through bootherd's /write, in the same run, on the
 * same influxd (Debian's 1.6) in the head namespace. Through bootherd it
 * reports the points per second accepted (every batch checked and fsynced
 * before its 204) and delivered (until `influx` counts every point).
 *
 *   node --import tsx bench/telemetry/run.ts [--batches 200] [--lines 1000] [--concurrency 8]
 *   npm run bench:telemetry
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../src/lab/netns.ts';
import { createInfluxd } from '../../test/helpers/influxd.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/bootherd.mjs');
const HEAD = '198.18.0.1';

function arg(name: string, fallback: string): number {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback);
}
const batches = arg('batches', '200');
const lines = arg('lines', '1000');
const concurrency = arg('concurrency', '8');
const profileAt = process.argv.indexOf('--profile');
/** --profile DIR: bootherd runs with --cpu-prof, its .cpuprofile written to DIR when it stops. */
const profileDir = profileAt > 0 ? path.resolve(process.argv[profileAt + 1] ?? 'bench-profile') : undefined;

const lab = Lab.create({ prefix: `bntel${process.pid.toString(36)}`, clients: 1, clientCidr: () => '198.18.0.2/24' });
try {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-bench-telemetry-'));
  const influx = createInfluxd(lab, lab.head.ns, HEAD, path.join(dir, 'influxdb'));
  await influx.start();
  influx.query('CREATE DATABASE telegraf');
  const config = path.join(dir, 'cluster.yaml');
  writeFileSync(config, `
cluster: { domain: bench.test }
head: { name: head, address: ${HEAD} }
state: ${path.join(dir, 'state')}
subnets: [{ network: 198.18.0.0/24 }]
dhcp: { enabled: false }
dns: { enabled: false }
ntp: { enabled: false }
tftp: { enabled: false }
telemetry: { influxdb: "http://${HEAD}:8086", selfInterval: 0 }
`);
  const server = lab.spawn(lab.head.ns, process.execPath, [...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), BIN, 'serve', '--config', config]);
  await new Promise<void>((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`bootherd did not start:\n${log}`)), 30_000);
    server.stderr!.on('data', (d: Buffer) => { log += d.toString(); if (log.includes('"msg":"bootherd started"')) { clearTimeout(timer); resolve(); } });
  });
  const token = readFileSync(path.join(dir, 'state', 'ingest-token'), 'utf8').trim();
  const count = (m: string): number => {
    try { return (influx.rows(`SELECT count("usage_user") FROM "${m}"`, 'telegraf')[0]?.[1] as number | undefined) ?? 0; } catch { return 0; }
  };
  const load = (url: string, m: string): { points: number; seconds: number; failures: number } =>
    JSON.parse(execFileSync('ip', ['netns', 'exec', lab.clients[0]!.ns, process.execPath, '--import', 'tsx', path.join(ROOT, 'bench/telemetry/load.ts'), url, token, m, String(batches), String(lines), String(concurrency)],
      { encoding: 'utf8', cwd: ROOT, timeout: 600_000 })) as { points: number; seconds: number; failures: number };
  const total = batches * lines;

  const direct = load(`http://${HEAD}:8086/write?db=telegraf`, 'direct');
  const directCount = count('direct');
  const t0 = Date.now();
  const relayed = load(`http://${HEAD}/write?db=telegraf`, 'relayed');
  let delivered = count('relayed');
  for (let i = 0; i < 1200 && delivered < total; i++) { await new Promise((r) => setTimeout(r, 250)); delivered = count('relayed'); }
  const deliveredSeconds = (Date.now() - t0) / 1000;
  const rate = (p: number, s: number) => Math.round(p / s);
  console.log(`batches ${batches} x ${lines} lines, gzip, ${concurrency} at a time; ${os.cpus().length} cores`);
  console.log(`straight to influxd:      ${rate(direct.points, direct.seconds)} points/s written (${directCount}/${total} stored, ${direct.failures} failed)`);
  console.log(`bootherd /write accepted: ${rate(relayed.points, relayed.seconds)} points/s (checked, on disk, 204; ${relayed.failures} failed)`);
  console.log(`bootherd -> influxd:      ${rate(delivered, deliveredSeconds)} points/s delivered (${delivered}/${total} stored)`);
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  await influx.stop();
} finally {
  lab.destroy();
}
