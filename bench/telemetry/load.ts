/**
 * Load for bench/telemetry (runs inside a client namespace): posts `batches`
 * gzip'd telegraf-shaped batches of `lines` lines each, `concurrency` at a
 * time, to a write URL; prints {points, seconds, failures} as JSON.
 *
 *   node --import tsx bench/telemetry/load.ts URL TOKEN MEASUREMENT BATCHES LINES CONCURRENCY
 */
import { gzipSync } from 'node:zlib';

const [url, token, measurement, batchesArg, linesArg, concurrencyArg] = process.argv.slice(2);
const batches = Number(batchesArg);
const lines = Number(linesArg);
const concurrency = Number(concurrencyArg);

const bodies: Buffer[] = [];
for (let b = 0; b < batches; b++) {
  const out: string[] = [];
  const ts = 1_700_000_000_000_000_000n + BigInt(b) * 1_000_000_000n;
  for (let i = 0; i < lines; i++) {
    out.push(`${measurement},cpu=cpu-total,host=n${String(i).padStart(5, '0')} usage_idle=${(98 + (i % 100) / 100).toFixed(2)},usage_user=1.25,usage_system=0.5,usage_iowait=0.01,n=${b}i ${ts}`);
  }
  bodies.push(gzipSync(out.join('\n') + '\n'));
}

let next = 0;
let failures = 0;
const start = process.hrtime.bigint();
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < batches) {
    const body = bodies[next++]!;
    const res = await fetch(url!, { method: 'POST', body, headers: { 'content-encoding': 'gzip', 'content-type': 'text/plain; charset=utf-8', authorization: `Token ${token}` } });
    await res.arrayBuffer();
    if (res.status !== 204) failures++;
  }
}));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
process.stdout.write(JSON.stringify({ points: batches * lines, seconds, failures }) + '\n');
