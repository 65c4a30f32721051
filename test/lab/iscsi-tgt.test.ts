/**
 * iSCSI root disks through the tgt backend, checked by real initiators:
 * bootherd drives a real tgtd (Debian's tgt) in the head's namespace, and
 * libiscsi's iscsi-ls / iscsi-inq and qemu-img (qemu's libiscsi driver) log
 * in from the nodes' namespaces.
 */
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterModel } from '../../src/cluster/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import { Lab } from '../../src/lab/netns.ts';
import { silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { IscsiService } from '../../src/services/iscsi/service.ts';
import { parseTgtTargets } from '../../src/services/iscsi/tgt.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { startLabServer, uniquePrefix } from '../helpers/lab-server.ts';
import { startTgtd, type Tgtd } from '../helpers/tgtd.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';

const P = 'iqn.2024-01.test.lab.bootherd:';
const I = 'iqn.2024-01.test.lab:';
const PORTAL = '198.18.0.1:3260';
const MiB = 1 << 20;

/** A golden image anyone can recognise: a label, then a byte pattern over 4 MiB. */
function writeGolden(file: string): Buffer {
  const b = Buffer.alloc(4 * MiB);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + (i >> 9)) & 255;
  b.write('BOOTHERD GOLDEN IMAGE', 0);
  writeFileSync(file, b);
  return b;
}

const config = (dir: string, controlPort: number, nodes: string) => (state: string) => `
cluster: { domain: lab.test }
head: { address: 198.18.0.1 }
state: ${state}
log: { level: info }
dhcp: { enabled: false }
subnets: [{ network: 198.18.0.0/24 }]
iscsi: { backend: tgt, disks: ${dir}/disks, images: ${dir}, tgt: { controlPort: ${controlPort} } }
profiles:
  diskless: { kernel: vmlinuz, root: { kind: iscsi, image: ${dir}/golden.img } }
nodes:
${nodes}`;

const N1 = '  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11, profile: diskless }';
const N2 = '  - { name: n002, macs: [52:54:00:00:00:02], ip: 198.18.0.12, profile: diskless }';
const N2_LOCAL = '  - { name: n002, macs: [52:54:00:00:00:02], ip: 198.18.0.12 }';

/** Our targets as tgtd has them: iqn -> [LUN paths, ACLs]. */
function exported(tgtd: Tgtd): Record<string, { luns: string[]; acls: string[] }> {
  const out: Record<string, { luns: string[]; acls: string[] }> = {};
  for (const x of parseTgtTargets(tgtd.show())) out[x.iqn] = { luns: x.luns.map((l) => `${l.lun} ${l.path}`), acls: [...x.acls] };
  return out;
}

t.test('a real initiator reads its node\'s disk; ACLs refuse others; restarts and node changes leave exactly the expected state', async (t) => {
  let tgtd!: Tgtd;
  let dir = '';
  let golden!: Buffer;
  const holder = { port: 0 };
  const s = await startLabServer(t, {
    tag: 'it', clients: 2, clientCidr: (i) => `198.18.0.${11 + i}/24`,
    config: (state) => config(path.dirname(state), holder.port, N1 + '\n' + N2_LOCAL)(state),
    async before(lab, d) {
      dir = d;
      golden = writeGolden(path.join(d, 'golden.img'));
      tgtd = await startTgtd(lab, lab.head.ns, PORTAL);
      holder.port = tgtd.controlPort;
      writeFileSync(path.join(d, 'cluster.yaml'), config(d, tgtd.controlPort, N1 + '\n' + N2_LOCAL)(path.join(d, 'state')));
    },
  });
  t.teardown(() => tgtd.cleanup());
  const [c1, c2] = s.lab.clients as [typeof s.lab.clients[0], typeof s.lab.clients[0]];
  const disk1 = path.join(dir, 'disks', 'n001.img');

  t.same(exported(tgtd), { [`${P}n001`]: { luns: [`1 ${disk1}`], acls: [`${I}n001`] } }, 'tgtd exports n001 only, LUN 1 on its own disk, ACL its initiator');

  // The node's initiator discovers its target and sees one disk (LUN 0 is tgt's controller).
  const ls = s.lab.run(c1.ns, 'iscsi-ls', ['-s', '-i', `${I}n001`, `iscsi://${PORTAL}`], 20_000);
  t.equal(ls.code, 0, `iscsi-ls: ${ls.stderr}`);
  t.match(ls.stdout, new RegExp(`Target:${P.replace(/\./g, '\\.')}n001 Portal:198\\.18\\.0\\.1:3260,1`));
  t.match(ls.stdout, /Lun:1\s+Type:DIRECT_ACCESS/);
  const inq = s.lab.run(c1.ns, 'iscsi-inq', ['-i', `${I}n001`, `iscsi://${PORTAL}/${P}n001/1`], 20_000);
  t.match(inq.stdout, /Peripheral Device Type:DIRECT_ACCESS/, 'iscsi-inq: a disk');

  // Its content is the node's image, block for block.
  const copy = path.join(dir, 'read-back.img');
  const img = s.lab.run(c1.ns, 'qemu-img', ['convert', '-O', 'raw', '--image-opts', `driver=iscsi,transport=tcp,portal=${PORTAL},target=${P}n001,lun=1,initiator-name=${I}n001`, copy], 60_000);
  t.equal(img.code, 0, `qemu-img read the LUN: ${img.stderr}`);
  t.ok(readFileSync(copy).equals(golden), 'the LUN holds exactly the golden image');

  // Another initiator is refused: not listed, and its login fails.
  const other = s.lab.run(c2.ns, 'iscsi-ls', ['-s', '-i', `${I}n002`, `iscsi://${PORTAL}`], 20_000);
  t.notMatch(other.stdout, /Target:/, 'n002 discovers no target');
  const refused = s.lab.run(c2.ns, 'iscsi-inq', ['-i', `${I}n002`, `iscsi://${PORTAL}/${P}n001/1`], 20_000);
  t.not(refused.code, 0, 'n002 cannot log in to n001\'s target');
  t.match(refused.stderr + refused.stdout, /Login Failed|not found|authoriz/i);

  // A restart with the same cluster file changes nothing: same targets, same numbers.
  const before = tgtd.show();
  await s.stop();
  await s.start();
  t.equal(tgtd.show(), before, 'restart: tgtd untouched');
  t.match(s.logs(), /"msg":"iSCSI on"/);

  // The cluster file changes (n002 gets an iSCSI root, n001 loses it) and bootherd restarts.
  writeFileSync(s.configFile, config(dir, tgtd.controlPort, N1.replace(', profile: diskless', '') + '\n' + N2)(path.join(dir, 'state')));
  await s.stop();
  await s.start();
  t.same(exported(tgtd), { [`${P}n002`]: { luns: [`1 ${path.join(dir, 'disks', 'n002.img')}`], acls: [`${I}n002`] } }, 'exactly n002 now') || t.comment(s.logs());
  t.ok(readFileSync(disk1).length === 4 * MiB, 'n001\'s disk is kept (iscsi.removeDisks is false)');
  const now = s.lab.run(c2.ns, 'iscsi-inq', ['-i', `${I}n002`, `iscsi://${PORTAL}/${P}n002/1`], 20_000);
  t.equal(now.code, 0, 'n002 logs in to its own target');
  const gone = s.lab.run(c1.ns, 'iscsi-inq', ['-i', `${I}n001`, `iscsi://${PORTAL}/${P}n001/1`], 20_000);
  t.not(gone.code, 0, 'n001\'s target is gone');
});

t.test('live model changes reach tgtd without a restart; foreign targets stay', async (t) => {
  const lab = Lab.create({ prefix: uniquePrefix('iv'), clients: 1, clientCidr: () => '198.18.0.13/24' });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-iscsi-live-'));
  t.teardown(() => { lab.destroy(); rmSync(dir, { recursive: true, force: true }); });
  const golden = writeGolden(path.join(dir, 'golden.img'));
  const tgtd = await startTgtd(lab, lab.head.ns, PORTAL);
  t.teardown(() => tgtd.cleanup());
  // A target someone made by hand, outside bootherd's prefix.
  writeFileSync(path.join(dir, 'handmade.img'), Buffer.alloc(MiB));
  tgtd.adm('--mode', 'target', '--op', 'new', '--tid', '7', '--targetname', 'iqn.2003-01.org.example:handmade');
  tgtd.adm('--mode', 'logicalunit', '--op', 'new', '--tid', '7', '--lun', '1', '--backing-store', path.join(dir, 'handmade.img'));

  const cfg = parseConfig(config(dir, tgtd.controlPort, N1)(path.join(dir, 'state')), '<test>');
  const model = new ClusterModel(cfg, new MemoryStore());
  const service = new IscsiService({ config: cfg, model, log: silentLogger, metrics: new Metrics() });
  t.teardown(() => service.stop());
  await service.start();
  t.same(Object.keys(exported(tgtd)).sort(), ['iqn.2003-01.org.example:handmade', `${P}n001`]);
  t.same(service.status().foreign, ['iqn.2003-01.org.example:handmade']);

  await model.addNode({ name: 'n003', macs: ['52:54:00:00:00:03'], ip: '198.18.0.13', profile: 'diskless' });
  const end = Date.now() + 10_000;
  while (!exported(tgtd)[`${P}n003`]) {
    if (Date.now() > end) throw new Error('n003 was not exported within 10 s of being added');
    await new Promise((r) => setTimeout(r, 50));
  }
  await service.reconcile();
  const c = lab.clients[0]!;
  const copy = path.join(dir, 'n003-read.img');
  const img = lab.run(c.ns, 'qemu-img', ['convert', '-O', 'raw', '--image-opts', `driver=iscsi,transport=tcp,portal=${PORTAL},target=${P}n003,lun=1,initiator-name=${I}n003`, copy], 60_000);
  t.equal(img.code, 0, `the new node reads its disk: ${img.stderr}`);
  t.ok(readFileSync(copy).equals(golden), 'a fresh copy of the golden image');

  // Someone opens n001's target to every address by hand; bootherd takes it back to its node only.
  const tid = parseTgtTargets(tgtd.show()).find((x) => x.iqn === `${P}n001`)!.tid;
  tgtd.adm('--mode', 'target', '--op', 'bind', '--tid', String(tid), '--initiator-address', 'ALL');
  t.ok(lab.run(c.ns, 'iscsi-inq', ['-i', `${I}n003`, `iscsi://${PORTAL}/${P}n001/1`], 20_000).code === 0, 'with ALL bound, any initiator gets in (tgt: address OR name)');
  await service.reconcile();
  t.same(exported(tgtd)[`${P}n001`]!.acls, [`${I}n001`], 'the ALL binding is removed');
  t.not(lab.run(c.ns, 'iscsi-inq', ['-i', `${I}n003`, `iscsi://${PORTAL}/${P}n001/1`], 20_000).code, 0, 'and the other initiator is refused again');

  await model.removeNode('n003');
  await service.reconcile();
  t.same(Object.keys(exported(tgtd)).sort(), ['iqn.2003-01.org.example:handmade', `${P}n001`], 'n003 gone; the hand-made target untouched');
  t.equal(service.status().lastReconcile?.ok, true);
});
