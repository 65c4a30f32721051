/**
 * Issue 19, the relay between heads: two `bootherd serve` heads (ha at
 * 198.18.0.1, hb at 198.18.0.2, embedded stores, the same ingest token),
 * each with its own real influxd on its namespace's 127.0.0.1:8086. A node
 * posts to one head or the other; both InfluxDBs end up with every point,
 * each once, and a batch one head relays is not relayed back (no loop). A
 * node cannot mark its own batch as relayed.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, type LabHost } from '../../src/lab/netns.ts';
import { BIN, uniquePrefix } from '../helpers/lab-server.ts';
import { createInfluxd, type Influxd } from '../helpers/influxd.ts';
import { countPoints, readUntil, telemetryHeadConfig } from '../helpers/telemetry.ts';

const TOKEN = 'relay-test-ingest-token-0123456789abcdef';


t.test('two heads relay to each other: every point on both, once, no loop', async (t) => {
  const lab = Lab.create({ prefix: uniquePrefix('tr'), headCidr: '198.18.0.1/24', clients: 1, clientCidr: () => '198.18.0.11/24' });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-relay-'));
  const procs: ChildProcess[] = [];
  t.teardown(() => { for (const p of procs) p.kill('SIGTERM'); lab.destroy(); });
  const hosts: LabHost[] = [lab.head, lab.addHost('hb', { mac: '52:54:00:a0:00:02', cidr: '198.18.0.2/24' })];
  const names = ['ha', 'hb'];
  const influx: Influxd[] = [];
  for (let i = 0; i < 2; i++) {
    const state = path.join(dir, names[i]!, 'state');
    mkdirSync(state, { recursive: true });
    writeFileSync(path.join(state, 'ingest-token'), TOKEN + '\n', { mode: 0o600 });
    const db = createInfluxd(lab, hosts[i]!.ns, '127.0.0.1', path.join(dir, names[i]!, 'influxdb'));
    await db.start();
    influx.push(db);
    const file = path.join(dir, names[i]!, 'cluster.yaml');
    writeFileSync(file, telemetryHeadConfig({
      name: names[i], address: `198.18.0.${i + 1}`, state, telemetry: '{ maxBackoff: 1, selfInterval: 0 }',
      heads: [{ name: 'ha', address: '198.18.0.1' }, { name: 'hb', address: '198.18.0.2' }],
    }));
    const proc = lab.spawn(hosts[i]!.ns, process.execPath, [BIN, 'serve', '--config', file]);
    procs.push(proc);
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`head ${names[i]} did not start:\n${log}`)), 20_000);
      proc.stderr!.on('data', (d: Buffer) => { log += d.toString(); if (log.includes('"msg":"bootherd started"')) { clearTimeout(timer); resolve(); } });
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`head ${names[i]} exited with ${code}:\n${log}`)); });
    });
  }
  const node = lab.clients[0]!;
  const post = (head: number, body: string, extra: string[] = []): string => lab.run(node.ns, 'curl', ['-sS', '--max-time', '20', '-o', '/dev/null', '-w', '%{http_code}',
    '-H', `Authorization: Token ${TOKEN}`, ...extra, '--data-binary', body, `http://198.18.0.${head + 1}/api/v2/write?bucket=telegraf&precision=s`]).stdout;
  const count = (i: number, m: string): number => countPoints(influx[i]!, m, 'v');
  const lines = (m: string, host: string, n: number, from = 0) => Array.from({ length: n }, (_, k) => `${m},host=${host} v=${k}i ${1_700_000_000 + from + k}`).join('\n');

  for (let b = 0; b < 10; b++) {
    t.equal(post(0, lines('relay', 'n001', 10, b * 10)), '204');
    t.equal(post(1, lines('relay', 'n002', 10, b * 10)), '204');
  }
  // Claims to be relayed, but comes from a node: relayed as any other batch.
  t.equal(post(0, lines('claimed', 'n003', 5), ['-H', 'X-Bootherd-Relayed-From: hb']), '204');
  for (let i = 0; i < 2; i++) {
    t.equal(await readUntil(() => count(i, 'relay'), (n) => n >= 200), 200, `${names[i]}'s InfluxDB has all 200 points`);
    t.equal(await readUntil(() => count(i, 'claimed'), (n) => n >= 5), 5, `${names[i]}'s InfluxDB has the batch a node marked relayed`);
  }
  await new Promise((r) => setTimeout(r, 2000));
  const status = (i: number) => JSON.parse(lab.run(hosts[i]!.ns, 'curl', ['-sS', `http://198.18.0.${i + 1}/api/v1/status`]).stdout) as
    { services: { telemetry: { acceptedPoints: number; targets: Array<{ name: string; deliveredPoints: number; queuedPoints: number }> } } };
  const [a, b] = [status(0).services.telemetry, status(1).services.telemetry];
  const delivered = (s: typeof a, name: string) => s.targets.find((x) => x.name === name)?.deliveredPoints;
  t.equal(delivered(a, 'head-hb'), 105, 'ha relayed only what nodes sent it');
  t.equal(delivered(b, 'head-ha'), 100, 'hb relayed only what nodes sent it, not what ha relayed (no loop)');
  t.equal(a.acceptedPoints, 205, 'ha took its 105 and hb\'s 100');
  t.equal(b.acceptedPoints, 205);
  for (let i = 0; i < 2; i++) t.equal(count(i, 'relay'), 200, `${names[i]}: each point stored once`);
});
