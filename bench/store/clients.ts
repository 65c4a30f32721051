/**
 * Which etcd client: the same puts through the etcd3 package, through
 * @grpc/grpc-js with etcd's protos directly, and through etcd's JSON gRPC
 * gateway over HTTP, against one loopback member. Prints p50/p99 of lone puts
 * (one in flight) and puts/s with many in flight. Numbers go to docs/store.md.
 *
 *   node --import tsx bench/store/clients.ts [--n 2000] [--inflight 64]
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { Etcd3 } from 'etcd3';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { startEtcd } from '../../test/helpers/etcd.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('n', 2000);
const INFLIGHT = arg('inflight', 64);
const value = JSON.stringify({ mac: '52:54:00:12:34:56', ip: '198.18.0.10', expires: 1_700_000_000_000, head: 'h1' });

type Put = (key: string, value: string) => Promise<unknown>;

async function measure(name: string, put: Put): Promise<void> {
  for (let i = 0; i < 200; i++) await put(`/bench/warm/${i}`, value);
  const cpu0 = process.cpuUsage();
  const lat: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await put(`/bench/${name}/seq/${i % 500}`, value);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  const total = N * 4;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: INFLIGHT }, async () => {
    while (next < total) await put(`/bench/${name}/par/${next++ % 5000}`, value);
  }));
  const rate = total / ((performance.now() - t0) / 1000);
  const cpu = process.cpuUsage(cpu0);
  const cpuPerPut = (cpu.user + cpu.system) / (N + total);
  console.log(`${name.padEnd(10)} p50 ${lat[Math.floor(N * 0.5)]!.toFixed(2)} ms  p99 ${lat[Math.floor(N * 0.99)]!.toFixed(2)} ms  ${Math.round(rate)} puts/s (${INFLIGHT} in flight)  client CPU ${cpuPerPut.toFixed(0)} µs/put`);
}

const cluster = await startEtcd();
const endpoint = cluster.endpoints[0]!;
try {
  const client = new Etcd3({ hosts: [endpoint] });
  await measure('etcd3', (k, v) => client.put(k).value(v).exec());
  client.close();

  const require = createRequire(import.meta.url);
  const protoDir = path.join(path.dirname(require.resolve('etcd3/package.json')), 'proto');
  const def = loadSync(path.join(protoDir, 'rpc.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { etcdserverpb: { KV: grpc.ServiceClientConstructor } };
  const kv = new pkg.etcdserverpb.KV(endpoint.replace('http://', ''), grpc.credentials.createInsecure());
  const grpcPut: Put = (k, v) => new Promise((resolve, reject) => {
    (kv as unknown as { put(req: object, cb: (e: Error | null, r: unknown) => void): void })
      .put({ key: Buffer.from(k), value: Buffer.from(v) }, (e, r) => (e ? reject(e) : resolve(r)));
  });
  await measure('grpc-js', grpcPut);
  kv.close();

  const b64 = (s: string) => Buffer.from(s).toString('base64');
  await measure('gateway', async (k, v) => {
    const res = await fetch(`${endpoint}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(k), value: b64(v) }) });
    if (!res.ok) throw new Error(`gateway put: ${res.status}`);
    return res.json();
  });
} finally {
  await cluster.close();
}
