/**
 * Issue 19, telemetry ingest against a real influxd (Debian's 1.6) in the
 * head's namespace at its default address (127.0.0.1:8086) and a real
 * `bootherd serve`; curl posts telegraf-shaped batches from a node's namespace.
 *   - v1 and v2 paths, every precision, plain and gzip: `influx -execute`
 *     returns exactly the points sent
 *   - bad line, wrong or missing token, oversized body, fake gzip: the
 *     InfluxDB status, nothing stored, the server keeps serving; the ingest
 *     token cannot change the cluster
 *   - influxd stopped mid-stream and started again: every point once
 *   - bootherd killed with SIGKILL mid-stream: every point acknowledged with
 *     204 is delivered after the restart, also when the kill comes while
 *     POSTs are in flight and the cursor is behind
 */
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { startLabServer } from '../helpers/lab-server.ts';
import { createInfluxd, type Influxd } from '../helpers/influxd.ts';
import { countPoints, readUntil, telemetryHeadConfig } from '../helpers/telemetry.ts';

const HEAD = 'http://198.18.0.1';
const BODY_LIMIT = 65536;

const config = (state: string) => telemetryHeadConfig({ address: '198.18.0.1', state, telemetry: `{ bodyLimit: ${BODY_LIMIT}, maxBackoff: 1, selfInterval: 0 }` });

const NS_PER: Record<string, bigint> = { n: 1n, ns: 1n, u: 1000n, us: 1000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n };
/** The unit count of 2023-11-14T22:13:20Z in a precision, plus i. */
const stamp = (p: string, i: number): bigint => 1_700_000_000_000_000_000n / NS_PER[p]! + BigInt(i);

/** A telegraf-shaped batch: cpu and mem lines of one host, `n` instants. */
function batch(measurement: string, p: string, n: number, host = 'n001'): { body: string; points: Array<[bigint, string]> } {
  const lines: string[] = [];
  const points: Array<[bigint, string]> = [];
  for (let i = 0; i < n; i++) {
    const ts = stamp(p, i);
    lines.push(`${measurement},cpu=cpu-total,host=${host} usage_idle=${98 + i / 100},usage_user=1.5,n=${i}i,ok=true,note="a \\"b\\" c" ${ts}`);
    points.push([ts * NS_PER[p]!, host]);
  }
  return { body: lines.join('\n') + '\n', points };
}


t.test('telemetry ingest into a real influxd', async (t) => {
  let influx: Influxd | undefined;
  const s = await startLabServer(t, {
    tag: 'ti', config, clients: 1, clientCidr: () => '198.18.0.11/24',
    before: async (lab, dir) => {
      influx = createInfluxd(lab, lab.head.ns, '127.0.0.1', path.join(dir, 'influxdb'));
      await influx.start();
    },
  });
  const db = influx!;
  const node = s.lab.clients[0]!;
  const ingest = readFileSync(path.join(s.dir, 'state', 'ingest-token'), 'utf8').trim();
  const apiToken = readFileSync(path.join(s.dir, 'state', 'api-token'), 'utf8').trim();
  const post = (url: string, body: Buffer | string, headers: string[] = []): { status: string; body: string } => {
    const file = path.join(s.dir, `body-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, body);
    const r = s.lab.run(node.ns, 'curl', ['-sS', '--max-time', '20', '-w', '\n%{http_code}', '--data-binary', `@${file}`, ...headers.flatMap((h) => ['-H', h]), url], 30_000);
    const at = r.stdout.lastIndexOf('\n');
    return { status: r.stdout.slice(at + 1), body: r.stdout.slice(0, at) };
  };
  const stored = (m: string): Array<[bigint, string]> =>
    (db.rows(`SELECT "usage_idle","host" FROM "${m}"`, 'telegraf') as Array<[number | string, number, string]>)
      .map(([time, , host]) => [BigInt(time), host] as [bigint, string]);
  const count = (m: string): number => countPoints(db, m, 'usage_user');
  /** Points waiting in the relay's queue for this head's InfluxDB, as /api/v1/status shows them. */
  const queued = () => (JSON.parse(s.lab.run(node.ns, 'curl', ['-sS', '-H', `Authorization: Bearer ${apiToken}`, `${HEAD}/api/v1/status`]).stdout) as
    { services: { telemetry: { targets: Array<{ name: string; queuedPoints: number }> } } }).services.telemetry.targets.find((x) => x.name === 'influxdb')!.queuedPoints;

  t.test('v1 and v2, every precision, plain and gzip: exactly the points sent', async (t) => {
    const cases: Array<{ api: 'v1' | 'v2'; p: string; gzip: boolean }> = [
      ...['n', 'u', 'ms', 's', 'm', 'h'].map((p, i) => ({ api: 'v1' as const, p, gzip: i % 2 === 1 })),
      ...['ns', 'us', 'ms', 's'].map((p, i) => ({ api: 'v2' as const, p, gzip: i % 2 === 0 })),
    ];
    const sent = new Map<string, Array<[bigint, string]>>();
    for (const c of cases) {
      const m = `cpu_${c.api}_${c.p}${c.gzip ? '_gz' : ''}`;
      const { body, points } = batch(m, c.p, 25);
      const url = c.api === 'v1' ? `${HEAD}/write?db=telegraf&rp=autogen&precision=${c.p}${c.p === 'n' ? `&p=${ingest}` : ''}` : `${HEAD}/api/v2/write?org=lab&bucket=telegraf&precision=${c.p}`;
      const headers = [...(c.gzip ? ['Content-Encoding: gzip'] : []), ...(c.api === 'v1' && c.p === 'n' ? [] : [`Authorization: Token ${ingest}`])];
      const r = post(url, c.gzip ? gzipSync(body) : body, headers);
      t.equal(r.status, '204', `${m}: 204 ${r.body}`);
      sent.set(m, points);
    }
    for (const [m, points] of sent) {
      await readUntil(() => count(m), (n) => n >= points.length);
      t.same(stored(m), points, `${m}: the 25 points, at their times`);
    }
    // The API token works too, and a line without a timestamp gets the accept time.
    t.equal(post(`${HEAD}/write?db=telegraf`, 'untimed,host=n001 usage_user=1,usage_idle=2\n', [`Authorization: Token ${apiToken}`]).status, '204');
    t.equal(await readUntil(() => count('untimed'), (n) => n >= 1), 1, 'untimed point stored once');
  });

  t.test('refused writes: the right status, nothing stored, still serving', async (t) => {
    const good = batch('refused', 'ns', 3).body;
    const bad = good.split('\n');
    bad[1] = 'refused,host=n001 usage_idle=abc 1';
    const r1 = post(`${HEAD}/write?db=telegraf`, bad.join('\n'), [`Authorization: Token ${ingest}`]);
    t.equal(r1.status, '400');
    t.match(JSON.parse(r1.body).error, /line 2: bad field value "abc" in field "usage_idle"/, 'names the line and its number');
    const r2 = post(`${HEAD}/api/v2/write?bucket=telegraf`, bad.join('\n'), [`Authorization: Token ${ingest}`]);
    t.equal(r2.status, '400');
    t.match(JSON.parse(r2.body), { code: 'invalid', message: /line 2/ }, 'v2 answers as InfluxDB 2 does');
    t.equal(post(`${HEAD}/write?db=telegraf`, good, ['Authorization: Token wrong']).status, '401', 'wrong token');
    t.equal(post(`${HEAD}/write?db=telegraf&p=wrong`, good).status, '401', 'wrong p=');
    t.equal(post(`${HEAD}/api/v2/write?bucket=telegraf`, good).status, '401', 'no token');
    const big = batch('refused', 'ns', 1000).body;
    t.ok(big.length > BODY_LIMIT);
    t.equal(post(`${HEAD}/write?db=telegraf`, big, [`Authorization: Token ${ingest}`]).status, '413', 'oversized');
    const bomb = gzipSync(Buffer.alloc(BODY_LIMIT * 4, 'x'));
    t.ok(bomb.length < BODY_LIMIT);
    t.equal(post(`${HEAD}/write?db=telegraf`, bomb, [`Authorization: Token ${ingest}`, 'Content-Encoding: gzip']).status, '413', 'over the limit once gunzipped');
    const fake = post(`${HEAD}/write?db=telegraf`, good, [`Authorization: Token ${ingest}`, 'Content-Encoding: gzip']);
    t.equal(fake.status, '400', 'says gzip, is not');
    t.match(JSON.parse(fake.body).error, /not gzip/);
    t.equal(post(`${HEAD}/write?db=telegraf&precision=h`.replace('/write', '/api/v2/write'), good, [`Authorization: Token ${ingest}`]).status, '400', 'v2 has no h precision');
    // The ingest token is write-only: it cannot change the cluster.
    const nodes = s.lab.run(node.ns, 'curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-H', `Authorization: Bearer ${ingest}`, '-H', 'Content-Type: application/json',
      '--data', '{"name":"evil","macs":["52:54:00:66:66:66"],"ip":"198.18.0.66"}', `${HEAD}/api/v1/nodes`]).stdout;
    t.equal(nodes, '401', 'the ingest token cannot add a node');
    // Still serving: a good batch after all that is stored, and nothing of the refused ones is.
    t.equal(post(`${HEAD}/write?db=telegraf`, batch('after', 'ns', 3).body, [`Authorization: Token ${ingest}`]).status, '204');
    await readUntil(() => count('after'), (n) => n >= 3);
    t.equal(count('after'), 3);
    t.equal(count('refused'), 0, 'nothing of the refused writes is stored');
  });

  t.test('influxd stopped mid-stream and started again: every point once', async (t) => {
    let sent = 0;
    for (let i = 0; i < 30; i++) {
      // The first 10 batches delivered before influxd stops, so exactly the 20 sent after it wait.
      if (i === 10) { await readUntil(queued, (n) => n === 0); await db.stop(); }
      const lines = Array.from({ length: 20 }, (_, k) => `outage,host=n${String(k).padStart(3, '0')} usage_user=${i},usage_idle=${k} ${stamp('s', i)}`).join('\n');
      t.equal(post(`${HEAD}/write?db=telegraf&precision=s`, lines, [`Authorization: Token ${ingest}`]).status, '204', `batch ${i} accepted${i >= 10 ? ' with influxd down' : ''}`);
      sent += 20;
    }
    t.equal(queued(), 400, 'the 20 batches sent while influxd was down wait in the queue');
    const metrics = s.lab.run(node.ns, 'curl', ['-sS', '-H', `Authorization: Bearer ${apiToken}`, `${HEAD}/metrics`]).stdout;
    t.match(metrics, /bootherd_telemetry_queue_points\{target="influxdb"\} 400/);
    t.match(metrics, /bootherd_telemetry_oldest_point_age_seconds\{target="influxdb"\} [0-9.]+/);
    await db.start();
    t.equal(await readUntil(() => count('outage'), (n) => n >= sent), sent, `all ${sent} points arrived`);
    await new Promise((r) => setTimeout(r, 1500));
    t.equal(count('outage'), sent, 'and each once');
  });

  t.test('bootherd killed with SIGKILL mid-stream: every acknowledged point is delivered', async (t) => {
    await db.stop();
    let acked = 0;
    for (let i = 0; i < 40; i++) {
      const lines = Array.from({ length: 10 }, (_, k) => `crash,host=n${String(k).padStart(3, '0')} usage_user=${i},usage_idle=${k} ${stamp('ms', i)}`).join('\n');
      if (post(`${HEAD}/write?db=telegraf&precision=ms`, gzipSync(lines), [`Authorization: Token ${ingest}`, 'Content-Encoding: gzip']).status === '204') acked += 10;
    }
    t.equal(acked, 400);
    await s.kill9();
    await db.start();
    await s.start();
    t.equal(await readUntil(() => count('crash'), (n) => n >= acked), acked, `the ${acked} acknowledged points arrived after the restart`);
  });

  t.test('bootherd killed with SIGKILL right after a stream, influxd up (POSTs may be in flight, the cursor behind): every point, once', async (t) => {
    // influxd up: batches are being delivered (several POSTs out, the cursor file up to 200 ms behind) when the kill comes.
    let acked = 0;
    for (let i = 0; i < 60; i++) {
      const lines = Array.from({ length: 100 }, (_, k) => `inflight,host=n${String(k).padStart(3, '0')} usage_user=${i},usage_idle=${k} ${stamp('s', i)}`).join('\n');
      if (post(`${HEAD}/write?db=telegraf&precision=s`, gzipSync(lines), [`Authorization: Token ${ingest}`, 'Content-Encoding: gzip']).status === '204') acked += 100;
    }
    t.equal(acked, 6000);
    await s.kill9();
    await s.start();
    t.equal(await readUntil(() => count('inflight'), (n) => n >= acked), acked, `the ${acked} acknowledged points are in influxd after the restart`);
    t.equal(await readUntil(queued, (n) => n === 0), 0, 'and the queue empties (what was sent again was taken)');
    t.equal(count('inflight'), acked, 'each point once: a re-sent batch overwrote the same points');
  });
});
