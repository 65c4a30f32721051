/**
 * iSCSI benchmark: how fast bootherd brings a target in line with the
 * cluster, against tgt's own configuration tool, tgt-admin (Perl, from
 * Debian's tgt, the usual way to drive tgtd from a config file), on the same
 * tgtd, the same N nodes and the same disk files; then the data path through
 * each one's exports, read by libiscsi's iscsi-perf from a node namespace.
 *
 *   npm run bench:iscsi [-- --nodes 50] [-- --seconds 5]
 *
 * Bounded: 16 nodes by default, every tgt-admin call at most 120 s, reads --seconds.
 * Steps, each timed for both:
 *   export     N nodes from an empty tgtd (bootherd: start + reconcile; tgt-admin -e)
 *   unchanged  the same again (bootherd: reconcile; tgt-admin --update ALL)
 *   change     one node removed, one added (bootherd: model change + reconcile;
 *              tgt-admin --delete <iqn> + --update ALL from the edited file)
 *   read       iscsi-perf, sequential reads of one node's LUN for --seconds
 * A fresh tgtd for each tool, in a lab namespace; nothing leaves the lab.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClusterModel } from '../../src/cluster/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import { Lab } from '../../src/lab/netns.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { exportOf, iscsiNodes, namingOf } from '../../src/services/iscsi/names.ts';
import { IscsiService } from '../../src/services/iscsi/service.ts';
import { parseTgtTargets } from '../../src/services/iscsi/tgt.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { startTgtd, type Tgtd } from '../../test/helpers/tgtd.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : dflt);
// 16 by default: on this machine tgt-admin --update ALL over 25 targets left tgtd stuck in a
// "logicalunit new" (tgtadm waiting on it for minutes), so the reference could not finish larger runs.
const NODES = opt('nodes', 16);
const SECONDS = opt('seconds', 5);
const PORTAL = '198.18.0.1:3260';
const DISK_MIB = 64;

const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-iscsi-'));
const disks = path.join(dir, 'disks');
mkdirSync(disks);
// The same disk files for both tools: made once, sparse, with a label at the front.
const golden = Buffer.alloc(1 << 20);
golden.write('BOOTHERD BENCH IMAGE', 0);
writeFileSync(path.join(dir, 'golden.img'), golden);
const names = (from: number, count: number) => Array.from({ length: count }, (_, i) => `n${String(from + i).padStart(4, '0')}`);
for (const n of names(1, NODES + 1)) {
  writeFileSync(path.join(disks, `${n}.img`), golden);
  execFileSync('truncate', ['-s', `${DISK_MIB}M`, path.join(disks, `${n}.img`)]);
}

const macOf = (n: string) => { const i = Number(n.slice(1)); return `52:54:00:10:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`; };
const ipOf = (n: string) => { const i = Number(n.slice(1)); return `198.18.${1 + (i >> 8)}.${i & 255}`; };

function clusterFile(nodes: string[], controlPort: number): string {
  return `
cluster: { domain: bench.lab }
head: { address: 198.18.0.1 }
state: ${dir}/state
subnets: [{ network: 198.18.0.0/16 }]
iscsi: { backend: tgt, disks: ${disks}, images: ${dir}, tgt: { controlPort: ${controlPort} } }
profiles:
  diskless: { kernel: vmlinuz, root: { kind: iscsi, image: ${dir}/golden.img } }
nodes: [${nodes.map((n) => `{ name: ${n}, macs: ['${macOf(n)}'], ip: ${ipOf(n)}, profile: diskless }`).join(', ')}]
`;
}

/**
 * The same exports as tgt-admin config (targets.conf), written from bootherd's
 * own desired state: same names, same files. (tgt-admin also binds ALL to
 * each target, having no initiator-address line: its default, kept as is.)
 */
function targetsConf(nodes: string[], controlPort: number): string {
  const config = parseConfig(clusterFile(nodes, controlPort), '<bench>');
  const naming = namingOf(config);
  return iscsiNodes(new ClusterModel(config, new MemoryStore())).map(({ node, root }) => exportOf(naming, node.name, root)).map((e) => `<target ${e.iqn}>\n    <backing-store ${e.disk.path}>\n        lun 1\n    </backing-store>\n    initiator-name ${e.initiator}\n</target>\n`).join('');
}

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;

function checkState(tgtd: Tgtd, nodes: string[], who: string): void {
  const got = parseTgtTargets(tgtd.show()).map((x) => x.iqn.split(':')[1]).sort();
  if (got.join(',') !== [...nodes].sort().join(',')) throw new Error(`${who}: tgtd holds ${got.length} targets, expected ${nodes.length}`);
}

interface Result { export: number; unchanged: number; change: number; readMiBs: number; readIops: number }

/** Reads a node's LUN from the client namespace, which has that node's address; with its CHAP credentials on bootherd's export. */
function perf(lab: Lab, node: string, chap?: { user: string; secret: string }): { mibs: number; iops: number } {
  const iqn = `iqn.2024-01.lab.bench.bootherd:${node}`;
  const auth = chap ? `${chap.user}%${chap.secret}@` : '';
  const r = spawnSync('ip', ['netns', 'exec', lab.clients[0]!.ns, 'timeout', '-s', 'INT', String(SECONDS), 'iscsi-perf', '-i', `iqn.2024-01.lab.bench:${node}`, '-b', '256', '-m', '16', `iscsi://${auth}${PORTAL}/${iqn}/1`], { encoding: 'utf8', timeout: (SECONDS + 20) * 1000 });
  const out = r.stdout + r.stderr;
  // iscsi-perf (libiscsi 1.19) rewrites one status line: "... iops average 2645 (330 MB/s) ..."; the last is the run's average.
  const all = [...out.matchAll(/iops average (\d+) \(([\d.]+) MB\/s\)/g)];
  const last = all[all.length - 1];
  const iops = Number(last?.[1] ?? NaN);
  const mbs = Number(last?.[2] ?? NaN);
  if (!last) process.stderr.write(`iscsi-perf output not understood:\n${out}\n`);
  return { mibs: mbs, iops };
}

/** What to tear down if the run is interrupted (Ctrl-C, a timeout): namespaces and tgtd do not outlive the bench. */
let current: { lab: Lab; tgtd?: Tgtd } | undefined;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    current?.tgtd?.cleanup();
    current?.lab.destroy();
    rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}

async function withLab<T>(tag: string, fn: (lab: Lab, tgtd: Tgtd) => Promise<T>): Promise<T> {
  const lab = Lab.create({ prefix: `bhi${tag}${process.pid.toString(36)}`, headCidr: '198.18.0.1/16', clients: 1, clientCidr: () => `${ipOf(names(NODES + 1, 1)[0]!)}/16` });
  current = { lab };
  try {
    const tgtd = await startTgtd(lab, lab.head.ns, PORTAL);
    current.tgtd = tgtd;
    return await fn(lab, tgtd);
  } finally {
    current.tgtd?.cleanup();
    lab.destroy();
    current = undefined;
  }
}

const first = names(1, NODES);
// The change: the first node goes, node N+1 comes.
const changed = [...first.slice(1), ...names(NODES + 1, 1)];

async function runBootherd(): Promise<Result> {
  return withLab('b', async (lab, tgtd) => {
    // The nodes come through the model, as the API adds them, so the change step is a live one.
    const config = parseConfig(clusterFile([], tgtd.controlPort), '<bench>');
    const model = new ClusterModel(config, new MemoryStore());
    for (const n of first) await model.addNode({ name: n, macs: [macOf(n)], ip: ipOf(n), profile: 'diskless' });
    const service = new IscsiService({ config, model, log: silentLogger, metrics: new Metrics() });
    try {
      let t0 = process.hrtime.bigint();
      await service.start();
      const exp = ms(t0);
      checkState(tgtd, first, 'bootherd');
      t0 = process.hrtime.bigint();
      const r = await service.reconcile();
      const unchanged = ms(t0);
      if (r.applied.length) throw new Error('bootherd changed something on an unchanged cluster');
      const added = changed[changed.length - 1]!;
      t0 = process.hrtime.bigint();
      await model.removeNode(first[0]!);
      await model.addNode({ name: added, macs: [macOf(added)], ip: ipOf(added), profile: 'diskless' });
      const done = await service.reconcile();
      const change = ms(t0);
      if (!done.ok) throw new Error(`bootherd: ${done.error?.message}`);
      checkState(tgtd, changed, 'bootherd');
      const { mibs, iops } = perf(lab, added, service.chap.peek(added));
      return { export: exp, unchanged, change, readMiBs: mibs, readIops: iops };
    } finally {
      await service.stop();
    }
  });
}

async function runTgtAdmin(): Promise<Result> {
  return withLab('t', async (lab, tgtd) => {
    const conf = path.join(dir, 'targets.conf');
    const admin = (...a: string[]) => (process.stderr.write(`  tgt-admin ${a.join(' ')}\n`), execFileSync('tgt-admin', ['-C', String(tgtd.controlPort), '-c', conf, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 }));
    writeFileSync(conf, targetsConf(first, tgtd.controlPort));
    let t0 = process.hrtime.bigint();
    admin('-e');
    const exp = ms(t0);
    checkState(tgtd, first, 'tgt-admin');
    t0 = process.hrtime.bigint();
    admin('--update', 'ALL');
    const unchanged = ms(t0);
    writeFileSync(conf, targetsConf(changed, tgtd.controlPort));
    t0 = process.hrtime.bigint();
    admin('--delete', `iqn.2024-01.lab.bench.bootherd:${first[0]}`);
    admin('--update', 'ALL');
    const change = ms(t0);
    checkState(tgtd, changed, 'tgt-admin');
    const { mibs, iops } = perf(lab, changed[changed.length - 1]!);
    return { export: exp, unchanged, change, readMiBs: mibs, readIops: iops };
  });
}

try {
  process.stderr.write(`bootherd: ${NODES} nodes\n`);
  const b = await runBootherd();
  process.stderr.write(`tgt-admin: ${NODES} nodes\n`);
  const a = await runTgtAdmin();
  const ratio = (x: number, y: number) => (Number.isFinite(x) && Number.isFinite(y) && x > 0 ? `${(y / x).toFixed(2)}×` : '-');
  console.log(`\niSCSI on tgtd, ${NODES} nodes, ${DISK_MIB} MiB disks (${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores)`);
  console.log('| step | bootherd | tgt-admin | bootherd faster by |');
  console.log('|---|---:|---:|---:|');
  console.log(`| export ${NODES} nodes to an empty tgtd | ${b.export.toFixed(0)} ms | ${a.export.toFixed(0)} ms | ${ratio(b.export, a.export)} |`);
  console.log(`| reconcile, nothing changed | ${b.unchanged.toFixed(0)} ms | ${a.unchanged.toFixed(0)} ms | ${ratio(b.unchanged, a.unchanged)} |`);
  console.log(`| one node removed, one added | ${b.change.toFixed(0)} ms | ${a.change.toFixed(0)} ms | ${ratio(b.change, a.change)} |`);
  console.log(`| iscsi-perf sequential read, ${SECONDS} s | ${b.readMiBs} MB/s, ${b.readIops} IOPS | ${a.readMiBs} MB/s, ${a.readIops} IOPS | ${ratio(a.readIops, b.readIops)} (same tgtd data path) |`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
