/**
 * The DHCP claim transaction's latency (issue 18): EtcdStore.claim, the one
 * guarded txn a head makes before an OFFER and for a binding (compare the
 * address's and the client's revisions, put both), against one loopback
 * etcd member (test/helpers/etcd.ts, data in the temp dir). Lone claims (one
 * in flight): p50/p99/max; then claims with many in flight: claims/s and
 * p50/p99. Beside them, fdatasync of a 4 KiB write in the same directory,
 * since etcd syncs its WAL once per commit. Numbers go to docs/dhcp.md.
 *
 *   node --import tsx bench/store/claims.ts [--n 2000] [--inflight 64]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EtcdClient } from '../../src/store/etcd-client.ts';
import { EtcdStore } from '../../src/store/etcd.ts';
import { intToIp, ipToInt } from '../../src/net/ipv4.ts';
import { startEtcd } from '../../test/helpers/etcd.ts';
import { fdatasyncLatencies } from '../lib/disk.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('n', 2000);
const INFLIGHT = arg('inflight', 64);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-claims-bench-'));
const etcd = await startEtcd({ dir });
const client = new EtcdClient({ endpoints: etcd.endpoints });
const store = new EtcdStore({ client, cluster: 'bench' });
await store.open();

let next = ipToInt('10.0.0.1');
/** One claim of a never-used address by a new client, guarded on the revisions the cache holds (0, 0). */
async function claimOne(): Promise<number> {
  const n = next++;
  const ip = intToIp(n);
  const mac = `02:00:${((n >>> 24) & 255).toString(16).padStart(2, '0')}:${((n >>> 16) & 255).toString(16).padStart(2, '0')}:${((n >>> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
  const t = performance.now();
  const r = await store.claim(mac, { ip, mac, subnet: '10.0.0.0/8', state: 'offered', server: '198.18.0.1', expiresAt: Date.now() + 30_000, updatedAt: Date.now() }, store.claimRevisions(ip, mac));
  if (!r.claimed) throw new Error(`claim of ${ip} refused`);
  return performance.now() - t;
}

for (let i = 0; i < 200; i++) await claimOne();
const lone: number[] = [];
for (let i = 0; i < N; i++) lone.push(await claimOne());
lone.sort((a, b) => a - b);

const many: number[] = [];
const t0 = performance.now();
let started = 0;
await Promise.all(Array.from({ length: INFLIGHT }, async () => {
  while (started < N) { started++; many.push(await claimOne()); }
}));
const seconds = (performance.now() - t0) / 1000;
many.sort((a, b) => a - b);

const syncs = fdatasyncLatencies(dir);

console.log(`claims, one in flight (n ${N}): p50 ${fmt(pct(lone, 0.5))}, p99 ${fmt(pct(lone, 0.99))}, max ${fmt(lone.at(-1)!)}`);
console.log(`claims, ${INFLIGHT} in flight (n ${N}): ${Math.round(N / seconds)} claims/s, p50 ${fmt(pct(many, 0.5))}, p99 ${fmt(pct(many, 0.99))}`);
console.log(`fdatasync of 4 KiB in ${os.tmpdir()}: p50 ${fmt(pct(syncs, 0.5))}, p99 ${fmt(pct(syncs, 0.99))}`);
console.log(`load average before/after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

await store.close();
client.close();
await etcd.close();
rmSync(dir, { recursive: true, force: true });
