/**
 * Which etcd client: the same writes through the etcd3 package, through our
 * client (@grpc/grpc-js with etcd's protos, src/store/etcd-client.ts) and
 * through etcd's JSON gRPC gateway over HTTP (fetch), against one loopback
 * member. For a plain put and for a guarded txn (create-if-absent, the shape
 * of a DHCP claim): p50/p99 of lone writes (one in flight), writes/s with many
 * in flight, and the client's CPU per write. Numbers go to docs/store.md.
 *
 *   node --import tsx bench/store/clients.ts [--n 2000] [--inflight 64]
 *
 * etcd3 is not a dependency of bootherd (docs/store.md says why): to run this
 * comparison again, `npm install --no-save etcd3@1.1.2` first.
 */
import { EtcdClient } from '../../src/store/etcd-client.ts';
import { startEtcd } from '../../test/helpers/etcd.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('n', 2000);
const INFLIGHT = arg('inflight', 64);
const value = JSON.stringify({ ip: '198.18.0.10', mac: '52:54:00:12:34:56', subnet: '198.18.0.0/16', state: 'bound', expiresAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000 });

/** Writes `key`; `guarded`: only if the key is absent (a txn with a create-revision compare). */
type Write = (key: string, value: string, guarded: boolean) => Promise<unknown>;

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

async function measure(name: string, write: Write, guarded: boolean): Promise<void> {
  const kind = guarded ? 'txn' : 'put';
  const tag = `${name}/${kind}/${Date.now()}`;
  for (let i = 0; i < 200; i++) await write(`/bench/warm/${tag}/${i}`, value, guarded);
  let cpu0 = process.cpuUsage();
  const lat: number[] = [];
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    await write(`/bench/${tag}/seq/${i}`, value, guarded);
    lat.push(performance.now() - t);
  }
  const seqCpu = process.cpuUsage(cpu0);
  lat.sort((a, b) => a - b);
  const total = N * 4;
  let next = 0;
  cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: INFLIGHT }, async () => {
    while (next < total) await write(`/bench/${tag}/par/${next++}`, value, guarded);
  }));
  const rate = total / ((performance.now() - t0) / 1000);
  const parCpu = process.cpuUsage(cpu0);
  const us = (c: NodeJS.CpuUsage, n: number) => ((c.user + c.system) / n).toFixed(0);
  console.log(`| ${name} | ${kind} | ${pct(lat, 0.5).toFixed(2)} | ${pct(lat, 0.99).toFixed(2)} | ${us(seqCpu, N)} | ${Math.round(rate)} | ${us(parCpu, total)} |`);
}

async function etcd3Write(endpoint: string): Promise<{ write: Write; close: () => void } | undefined> {
  const name = 'etcd3';
  try {
    // Typed by hand: etcd3 is not installed in the normal tree.
    interface Etcd3Client {
      put(k: string): { value(v: string): { exec(): Promise<unknown> } };
      if(k: string, target: 'Create', cmp: '==', v: number): { then(op: unknown): { commit(): Promise<unknown> } };
      close(): void;
    }
    const { Etcd3 } = (await import(name)) as { Etcd3: new (o: { hosts: string[] }) => Etcd3Client };
    const client = new Etcd3({ hosts: [endpoint] });
    return {
      write: (k, v, guarded) => (guarded ? client.if(k, 'Create', '==', 0).then(client.put(k).value(v)).commit() : client.put(k).value(v).exec()),
      close: () => client.close(),
    };
  } catch {
    console.log('(etcd3 is not installed: `npm install --no-save etcd3@1.1.2` to compare it)');
    return undefined;
  }
}

const cluster = await startEtcd();
const endpoint = cluster.endpoints[0]!;
try {
  console.log(`${N} lone writes, then ${N * 4} with ${INFLIGHT} in flight; one etcd ${cluster.ctl('version').split('\n')[0]} member on loopback`);
  console.log('| client | write | p50 ms | p99 ms | CPU µs/write (lone) | writes/s | CPU µs/write (in flight) |');
  console.log('|---|---|---|---|---|---|---|');
  const e3 = await etcd3Write(endpoint);
  if (e3) {
    await measure('etcd3 1.1.2', e3.write, false);
    await measure('etcd3 1.1.2', e3.write, true);
    e3.close();
  }

  const ours = new EtcdClient({ endpoints: [endpoint] });
  const oursWrite: Write = (k, v, guarded) => ours.txn({
    compare: guarded ? [{ key: Buffer.from(k), target: 'CREATE', createRevision: 0 }] : [],
    success: [{ put: { key: Buffer.from(k), value: Buffer.from(v) } }],
  });
  await measure('grpc-js (ours)', oursWrite, false);
  await measure('grpc-js (ours)', oursWrite, true);
  ours.close();

  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const gateway: Write = async (k, v, guarded) => {
    const put = { key: b64(k), value: b64(v) };
    const body = guarded
      ? { compare: [{ key: put.key, target: 'CREATE', result: 'EQUAL', create_revision: '0' }], success: [{ request_put: put }] }
      : put;
    const res = await fetch(`${endpoint}/v3/kv/${guarded ? 'txn' : 'put'}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`gateway: ${res.status} ${await res.text()}`);
    return res.json();
  };
  await measure('JSON gateway', gateway, false);
  await measure('JSON gateway', gateway, true);
} finally {
  await cluster.close();
}
