/**
 * The store operations the services make, timed per backend on this machine:
 * a lease write (DHCP ACK), a node write (API), and a claim (the guarded write
 * DHCP will make per new lease): p50/p99 of lone writes (one in flight) and
 * writes/s with many in flight (group commit on disk, batched Txns on etcd).
 * Backends: embedded (journal in a temp dir), etcd with 1 member and with 3
 * members on loopback (data in a temp dir on the same disk). The disk's own
 * fdatasync latency is printed beside them: it bounds every durable write.
 *
 *   npm run bench:store -- [--n 500] [--burst 4000] [--inflight 64]
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LeaseRecord, NodeRecord } from '../../src/cluster/types.ts';
import { EmbeddedStore } from '../../src/store/embedded.ts';
import { EtcdClient } from '../../src/store/etcd-client.ts';
import { EtcdStore } from '../../src/store/etcd.ts';
import type { Store } from '../../src/store/store.ts';
import { startEtcd } from '../../test/helpers/etcd.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('n', 500);
const BURST = arg('burst', 4000);
const INFLIGHT = arg('inflight', 64);

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const macOf = (i: number) => `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const lease = (i: number): LeaseRecord => ({ ip: ipOf(i), mac: macOf(i), subnet: '10.0.0.0/8', state: 'bound', expiresAt: Date.now() + 3_600_000, updatedAt: Date.now() });
const node = (i: number) => ({ name: `n${i}`, macs: [macOf(i)], ip: ipOf(i), profile: 'compute', source: 'api' }) as unknown as NodeRecord;

function fdatasyncLatency(dir: string): { p50: number; p99: number } {
  const file = path.join(dir, 'fdatasync-probe');
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(4096, 1);
  const lat: number[] = [];
  for (let i = 0; i < 300; i++) {
    writeSync(fd, block);
    const t = performance.now();
    fdatasyncSync(fd);
    lat.push(performance.now() - t);
  }
  closeSync(fd);
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 0.5), p99: pct(lat, 0.99) };
}

type Op = (i: number) => Promise<unknown>;

async function measure(backend: string, what: string, op: Op, base: number): Promise<void> {
  for (let i = 0; i < 50; i++) await op(base + 900_000 + i);
  const lat: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await op(base + i);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: INFLIGHT }, async () => {
    while (next < BURST) await op(base + 100_000 + next++);
  }));
  const rate = BURST / ((performance.now() - t0) / 1000);
  console.log(`| ${backend} | ${what} | ${pct(lat, 0.5).toFixed(2)} | ${pct(lat, 0.99).toFixed(2)} | ${Math.round(rate)} |`);
}

async function run(backend: string, store: Store, base: number): Promise<void> {
  await measure(backend, 'lease write', (i) => store.put('leases', ipOf(i), lease(i)), base);
  await measure(backend, 'node write', (i) => store.put('nodes', `n${i}`, node(i)), base);
  await measure(backend, 'claim (new lease)', async (i) => {
    const l = lease(base + 300_000 + i);
    const r = await store.claim(l.mac, l, store.claimRevisions(l.ip, l.mac));
    if (!r.claimed) throw new Error(`claim of ${l.ip} refused`);
  }, base);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-bench-store-'));
try {
  const sync = fdatasyncLatency(dir);
  console.log(`${new Date().toISOString()} ${os.hostname()} ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; ${N} lone writes, then ${BURST} with ${INFLIGHT} in flight`);
  console.log(`fdatasync of 4 KiB in ${dir}: p50 ${sync.p50.toFixed(2)} ms, p99 ${sync.p99.toFixed(2)} ms`);
  console.log('| store | operation | p50 ms | p99 ms | writes/s |');
  console.log('|---|---|---|---|---|');
  const embedded = new EmbeddedStore(path.join(dir, 'embedded'));
  await embedded.open();
  await run('embedded', embedded, 0);
  await embedded.close();
  for (const members of [1, 3]) {
    const cluster = await startEtcd({ members, dir: path.join(dir, `etcd${members}`) });
    const client = new EtcdClient({ endpoints: cluster.endpoints });
    const store = new EtcdStore({ client, cluster: 'bench' });
    try {
      await store.open();
      await run(`etcd, ${members} member${members > 1 ? 's' : ''}`, store, members * 1_000_000);
    } finally {
      await store.close();
      client.close();
      await cluster.close();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
