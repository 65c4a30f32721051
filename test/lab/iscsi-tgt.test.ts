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
import type { ChapCredentials } from '../../src/services/iscsi/state.ts';
import { parseTgtAccounts, parseTgtTargets } from '../../src/services/iscsi/tgt.ts';
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

/** Our targets as tgtd has them: iqn -> [LUN paths, ACLs, bound CHAP accounts]. */
function exported(tgtd: Tgtd): Record<string, { luns: string[]; acls: string[]; accounts: string[] }> {
  const out: Record<string, { luns: string[]; acls: string[]; accounts: string[] }> = {};
  for (const x of parseTgtTargets(tgtd.show())) out[x.iqn] = { luns: x.luns.map((l) => `${l.lun} ${l.path}`), acls: [...x.acls], accounts: [...x.auth.incoming, ...x.auth.outgoing.map((u) => `${u} (outgoing)`)] };
  return out;
}

/** A node's CHAP credentials as bootherd keeps them. */
function chapOf(stateDir: string, node: string): ChapCredentials {
  return (JSON.parse(readFileSync(path.join(stateDir, 'iscsi-chap.json'), 'utf8')) as { nodes: Record<string, ChapCredentials> }).nodes[node]!;
}

/** libiscsi's URL with CHAP credentials (user%password@). */
const url = (who: { user: string; secret: string } | undefined, rest: string) => `iscsi://${who ? `${who.user}%${who.secret}@` : ''}${PORTAL}${rest}`;
/** libiscsi's mutual CHAP: the target must answer with these. */
const mutual = (c: ChapCredentials, secret = c.mutualSecret) => [`LIBISCSI_CHAP_TARGET_USERNAME=${c.mutualUser}`, `LIBISCSI_CHAP_TARGET_PASSWORD=${secret}`];

t.test('a real initiator reads its node\'s disk with its CHAP credentials from its address; everything else is refused; restarts and node changes leave exactly the expected state', async (t) => {
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
  // c1 has n001's address (its DHCP reservation); c2 is another machine of the cluster network.
  const [c1, c2] = s.lab.clients as [typeof s.lab.clients[0], typeof s.lab.clients[0]];
  const disk1 = path.join(dir, 'disks', 'n001.img');
  const stateDir = path.join(dir, 'state');
  const c = chapOf(stateDir, 'n001');

  t.same(exported(tgtd), { [`${P}n001`]: { luns: [`1 ${disk1}`], acls: ['198.18.0.11'], accounts: [c.user, `${c.mutualUser} (outgoing)`] } },
    'tgtd exports n001 only, LUN 1 on its own disk, open to its address only (no name ACL), with its CHAP accounts');

  // The node's initiator, from its address, with its credentials (mutual: the target proves itself too).
  // (iscsi-ls: one-way CHAP, since libiscsi would ask for mutual CHAP in the discovery session too, which has no account.)
  const ls = s.lab.run(c1.ns, 'iscsi-ls', ['-s', '-i', `${I}n001`, url(c, '')], 20_000);
  t.equal(ls.code, 0, `iscsi-ls: ${ls.stderr}`);
  t.match(ls.stdout, new RegExp(`Target:${P.replace(/\./g, '\\.')}n001 Portal:198\\.18\\.0\\.1:3260,1`));
  t.match(ls.stdout, /Lun:1\s+Type:DIRECT_ACCESS/);
  const inq = s.lab.run(c1.ns, 'env', [...mutual(c), 'iscsi-inq', '-i', `${I}n001`, url(c, `/${P}n001/1`)], 20_000);
  t.match(inq.stdout, /Peripheral Device Type:DIRECT_ACCESS/, 'iscsi-inq with mutual CHAP: a disk');

  // Its content is the node's image, block for block; and the node can write it.
  const copy = path.join(dir, 'read-back.img');
  const img = s.lab.run(c1.ns, 'qemu-img', ['convert', '-O', 'raw', '--image-opts', `driver=iscsi,transport=tcp,portal=${PORTAL},target=${P}n001,lun=1,initiator-name=${I}n001,user=${c.user},password=${c.secret}`, copy], 60_000);
  t.equal(img.code, 0, `qemu-img read the LUN: ${img.stderr}`);
  t.ok(readFileSync(copy).equals(golden), 'the LUN holds exactly the golden image');
  const write = s.lab.run(c1.ns, 'qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 1M 4k', url(c, `/${P}n001/1`)], 60_000);
  t.equal(write.code, 0, `qemu-io: the node writes its disk: ${write.stderr}`);
  t.ok(readFileSync(disk1).subarray(1 << 20, (1 << 20) + 4096).every((b) => b === 0x5a), 'and the write is on its disk file');

  // The attacker: n001's initiator name is public (its iPXE script prints it); its secret is not.
  const attempts: Array<[string, typeof c1, string[], RegExp]> = [
    ['from n001\'s own address, no secret', c1, ['iscsi-inq', '-i', `${I}n001`, url(undefined, `/${P}n001/1`)], /Authentication failure/],
    ['from n001\'s own address, a wrong secret', c1, ['iscsi-inq', '-i', `${I}n001`, url({ user: c.user, secret: 'WrongSecretWrongSecret12' }, `/${P}n001/1`)], /Authentication failure/],
    ['from n001\'s address, another node\'s account name', c1, ['iscsi-inq', '-i', `${I}n001`, url({ user: 'bootherd-n002-00000000', secret: c.secret }, `/${P}n001/1`)], /Authentication failure/],
    ['from another address, with n001\'s name AND its right secret', c2, ['iscsi-inq', '-i', `${I}n001`, url(c, `/${P}n001/1`)], /Target not found|Login Failed/],
    ['n001\'s address, right secret, but a target that cannot prove itself (wrong mutual secret)', c1, ['env', ...mutual(c, 'NotTheTargetSecret123456'), 'iscsi-inq', '-i', `${I}n001`, url(c, `/${P}n001/1`)], /fail|Failed|error/i],
  ];
  for (const [what, who, argv, why] of attempts) {
    const r = s.lab.run(who.ns, argv[0]!, argv.slice(1), 20_000);
    t.not(r.code, 0, `refused: ${what}`);
    t.match(r.stderr + r.stdout, why, `${what}: ${(r.stderr + r.stdout).trim().split('\n')[0]}`);
  }
  const before = readFileSync(disk1);
  for (const [what, who, u] of [['another address, with the secret', c2, url(c, `/${P}n001/1`)], ['n001\'s address, no secret', c1, url(undefined, `/${P}n001/1`)]] as const) {
    const r = s.lab.run(who.ns, 'qemu-io', ['-f', 'raw', '-c', 'write -P 0xee 0 64k', '--image-opts', `driver=iscsi,transport=tcp,portal=${PORTAL},target=${P}n001,lun=1,initiator-name=${I}n001${u.includes('%') ? `,user=${c.user},password=${c.secret}` : ''}`], 60_000);
    t.not(r.code, 0, `qemu-io cannot open n001's disk: ${what}`);
  }
  const read = s.lab.run(c2.ns, 'qemu-img', ['convert', '-O', 'raw', '--image-opts', `driver=iscsi,transport=tcp,portal=${PORTAL},target=${P}n001,lun=1,initiator-name=${I}n001,user=${c.user},password=${c.secret}`, path.join(dir, 'stolen.img')], 60_000);
  t.not(read.code, 0, 'nor read it from another address');
  t.ok(readFileSync(disk1).equals(before), 'n001\'s disk is unchanged by every attempt');
  const discovered = s.lab.run(c2.ns, 'iscsi-ls', ['-s', '-i', `${I}n001`, `iscsi://${PORTAL}`], 20_000);
  t.notMatch(discovered.stdout, /Target:/, 'another address discovers no target');

  // The node's iPXE script: its CHAP lines for its own address only (HTTP, the same as TFTP).
  const script = (who: typeof c1) => s.lab.run(who.ns, 'curl', ['-sf', 'http://198.18.0.1/boot/52-54-00-00-00-01.ipxe'], 20_000).stdout;
  const own = script(c1);
  t.match(own, `\nset username ${c.user}\nset password ${c.secret}\nset reverse-username ${c.mutualUser}\nset reverse-password ${c.mutualSecret}\n`, 'n001\'s address gets its credentials');
  const other = script(c2);
  t.match(other, /^sanboot iscsi:198\.18\.0\.1::3260:1:/m, 'another address gets the script');
  t.notOk(other.includes(c.secret) || other.includes(c.mutualSecret) || /^set (username|password|reverse-)/m.test(other), 'without any CHAP line or secret');

  // A restart with the same cluster file changes nothing: same targets, same numbers, same accounts.
  const shown = tgtd.show();
  await s.stop();
  await s.start();
  t.equal(tgtd.show(), shown, 'restart: tgtd untouched');
  t.match(s.logs(), /"msg":"iSCSI on"/);

  // The cluster file changes (n002 gets an iSCSI root, n001 loses it) and bootherd restarts.
  writeFileSync(s.configFile, config(dir, tgtd.controlPort, N1.replace(', profile: diskless', '') + '\n' + N2)(stateDir));
  await s.stop();
  await s.start();
  const c2creds = chapOf(stateDir, 'n002');
  t.same(exported(tgtd), { [`${P}n002`]: { luns: [`1 ${path.join(dir, 'disks', 'n002.img')}`], acls: ['198.18.0.12'], accounts: [c2creds.user, `${c2creds.mutualUser} (outgoing)`] } }, 'exactly n002 now') || t.comment(s.logs());
  t.same(parseTgtAccounts(tgtd.adm('--mode', 'account', '--op', 'show')).sort(), [c2creds.mutualUser, c2creds.user].sort(), 'n001\'s accounts are gone from tgtd');
  t.ok(readFileSync(disk1).length === 4 * MiB, 'n001\'s disk is kept (iscsi.removeDisks is false)');
  const now = s.lab.run(c2.ns, 'iscsi-inq', ['-i', `${I}n002`, url(c2creds, `/${P}n002/1`)], 20_000);
  t.equal(now.code, 0, 'n002 logs in to its own target');
  const gone = s.lab.run(c1.ns, 'iscsi-inq', ['-i', `${I}n001`, url(c, `/${P}n001/1`)], 20_000);
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
  const c3 = service.chap.peek('n003')!;
  const img = lab.run(c.ns, 'qemu-img', ['convert', '-O', 'raw', '--image-opts', `driver=iscsi,transport=tcp,portal=${PORTAL},target=${P}n003,lun=1,initiator-name=${I}n003,user=${c3.user},password=${c3.secret}`, copy], 60_000);
  t.equal(img.code, 0, `the new node reads its disk: ${img.stderr}`);
  t.ok(readFileSync(copy).equals(golden), 'a fresh copy of the golden image');

  // Someone opens n001's target to every address and unbinds its CHAP account by hand; bootherd takes both back.
  const c1 = service.chap.peek('n001')!;
  const tid = parseTgtTargets(tgtd.show()).find((x) => x.iqn === `${P}n001`)!.tid;
  tgtd.adm('--mode', 'target', '--op', 'bind', '--tid', String(tid), '--initiator-address', 'ALL');
  tgtd.adm('--mode', 'account', '--op', 'unbind', '--tid', String(tid), '--user', c1.user);
  t.ok(lab.run(c.ns, 'iscsi-inq', ['-i', `${I}n003`, `iscsi://${PORTAL}/${P}n001/1`], 20_000).code === 0, 'with ALL bound and no incoming account, any initiator gets in without a secret');
  await service.reconcile();
  t.same(exported(tgtd)[`${P}n001`]!.acls, ['198.18.0.11'], 'the ALL binding is removed');
  t.same(exported(tgtd)[`${P}n001`]!.accounts, [c1.user, `${c1.mutualUser} (outgoing)`], 'the CHAP account is bound again');
  t.not(lab.run(c.ns, 'iscsi-inq', ['-i', `${I}n003`, `iscsi://${PORTAL}/${P}n001/1`], 20_000).code, 0, 'and the other machine is refused again, without a secret');
  t.not(lab.run(c.ns, 'iscsi-inq', ['-i', `${I}n001`, `iscsi://${c1.user}%${c1.secret}@${PORTAL}/${P}n001/1`], 20_000).code, 0, 'and with n001\'s secret from another address');

  await model.removeNode('n003');
  await service.reconcile();
  t.same(Object.keys(exported(tgtd)).sort(), ['iqn.2003-01.org.example:handmade', `${P}n001`], 'n003 gone; the hand-made target untouched');
  t.equal(service.status().lastReconcile?.ok, true);
});
