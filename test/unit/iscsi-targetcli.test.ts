/**
 * The targetcli backend: for each reconcile case, the exact sequence of
 * targetcli commands. They run against a recording fake of targetcli
 * (test/helpers/fake-targetcli.ts) always, and against the real targetcli
 * when this kernel has LIO (/sys/kernel/config/target exists); otherwise
 * that half is skipped and says so.
 */
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execRunner, type Runner } from '../../src/services/iscsi/backend.ts';
import { converge } from '../../src/services/iscsi/converge.ts';
import type { DesiredExport, DesiredState } from '../../src/services/iscsi/state.ts';
import { LIO_CONFIGFS, parseRtslibDump, TargetcliBackend } from '../../src/services/iscsi/targetcli.ts';
import { fakeTargetcli } from '../helpers/fake-targetcli.ts';

// Unique per run, so a run against a real LIO never meets another's targets.
const TAG = `t${process.pid.toString(36)}`;
const P = `iqn.2024-01.test.lab.bootherd${TAG}:`;
const I = 'iqn.2024-01.test.lab:';
const BS = `bootherd${TAG}-`;
const PORTAL = { address: '198.18.0.1', port: 3260 };

interface Case {
  readonly name: string;
  readonly nodes: ReadonlyArray<string | [string, string]>;
  /** targetcli argv expected, `D` standing for the disks directory. */
  readonly expect: string[][];
}

const tpg = (n: string) => `/iscsi/${P}${n}/tpg1`;
const firstExport = (n: string): string[][] => [
  ['/iscsi', 'create', `wwn=${P}${n}`],
  [`${tpg(n)}/portals`, 'delete', 'ip_address=0.0.0.0', 'ip_port=3260'],
  [`${tpg(n)}/portals`, 'create', 'ip_address=198.18.0.1', 'ip_port=3260'],
  [`${tpg(n)}/luns`, 'create', `storage_object=/backstores/fileio/${BS}${n}`, 'lun=0', 'add_mapped_luns=true'],
  [tpg(n), 'set', 'attribute', 'authentication=1', 'generate_node_acls=0'],
  [`${tpg(n)}/acls`, 'create', `wwn=${I}${n}`, 'add_mapped_luns=true'],
  [`${tpg(n)}/acls/${I}${n}`, 'set', 'auth', `userid=bootherd-${n}-1`, `password=s-${n}`, `mutual_userid=bootherd-${n}-1-target`, `mutual_password=m-${n}`],
];

// One sequence, each case starting from the state the one before left.
const CASES: Case[] = [
  {
    name: 'first export of two nodes',
    nodes: ['n001', 'n002'],
    expect: [
      ['/backstores/fileio', 'create', `name=${BS}n001`, 'file_or_dev=D/n001.img'],
      ['/backstores/fileio', 'create', `name=${BS}n002`, 'file_or_dev=D/n002.img'],
      ...firstExport('n001'),
      ...firstExport('n002'),
      ['saveconfig'],
    ],
  },
  { name: 'reconcile again: no command, no save', nodes: ['n001', 'n002'], expect: [] },
  {
    name: 'a node\'s disk moves',
    nodes: ['n001', ['n002', 'moved-n002.img']],
    expect: [
      [`${tpg('n002')}/luns`, 'delete', 'lun=0'],
      ['/backstores/fileio', 'delete', `name=${BS}n002`],
      ['/backstores/fileio', 'create', `name=${BS}n002`, 'file_or_dev=D/moved-n002.img'],
      [`${tpg('n002')}/luns`, 'create', `storage_object=/backstores/fileio/${BS}n002`, 'lun=0', 'add_mapped_luns=true'],
      ['saveconfig'],
    ],
  },
  {
    name: 'a node is removed',
    nodes: ['n001'],
    expect: [
      ['/iscsi', 'delete', `wwn=${P}n002`],
      ['/backstores/fileio', 'delete', `name=${BS}n002`],
      ['saveconfig'],
    ],
  },
  {
    name: 'the last node is removed',
    nodes: [],
    expect: [
      ['/iscsi', 'delete', `wwn=${P}n001`],
      ['/backstores/fileio', 'delete', `name=${BS}n001`],
      ['saveconfig'],
    ],
  },
];

function desiredOf(dir: string, nodes: Case['nodes']): DesiredState {
  const exports: DesiredExport[] = nodes.map((n) => {
    const [node, file] = typeof n === 'string' ? [n, `${n}.img`] : n;
    const chap = { user: `bootherd-${node}-1`, secret: `s-${node}`, mutualUser: `bootherd-${node}-1-target`, mutualSecret: `m-${node}` };
    return { node, iqn: P + node, initiator: I + node, address: '198.18.0.99', chap, disk: { kind: 'file', path: path.join(dir, file) } };
  });
  return { exports, portal: PORTAL, targetPrefix: P, backstorePrefix: BS, accountPrefix: BS };
}

/** Runs the cases in order against a runner; `changes` returns the changing commands recorded since the last call. */
async function runCases(t: Test, run: Runner, changes: () => string[][], configfs: string): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-lio-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['n001.img', 'n002.img', 'moved-n002.img']) writeFileSync(path.join(dir, f), Buffer.alloc(1 << 20));
  const backend = new TargetcliBackend({ run, configfs });
  t.same(await backend.probe(), { ok: true }, 'probe: targetcli answers');
  for (const c of CASES) {
    const r = await converge(backend, desiredOf(dir, c.nodes));
    const expected = c.expect.map((argv) => argv.map((a) => a.replace(/=D\//, `=${dir}/`)));
    t.same(changes(), expected, c.name);
    t.equal(r.applied.length, c.expect.filter((a) => a[0] !== 'saveconfig').length, `${c.name}: every operation applied`);
    // Whatever the case, what is there now is what was asked.
    const now = await backend.read();
    const ours = now.targets.filter((x) => x.iqn.startsWith(P));
    t.same(ours.map((x) => x.iqn).sort(), c.nodes.map((n) => P + (typeof n === 'string' ? n : n[0])).sort(), `${c.name}: exactly the wanted targets`);
  }
}

t.test('targetcli command sequences (recording fake)', async (t) => {
  const fake = fakeTargetcli();
  let seen = 0;
  const changes = () => { const all = fake.changes(); const out = all.slice(seen); seen = all.length; return out; };
  const configfs = mkdtempSync(path.join(os.tmpdir(), 'bootherd-configfs-'));
  t.teardown(() => rmSync(configfs, { recursive: true, force: true }));
  await runCases(t, fake.run, changes, configfs);
});

t.test('ACLs map the LUN; a foreign target and its backstore stay', async (t) => {
  const fake = fakeTargetcli({
    storage_objects: [{ name: 'handmade', plugin: 'fileio', dev: '/srv/handmade.img' }],
    targets: [{ wwn: 'iqn.2003-01.org.linux-iscsi.head:sn.1', fabric: 'iscsi', tpgs: [{ tag: 1, luns: [{ index: 0, storage_object: '/backstores/fileio/handmade' }], node_acls: [], portals: [{ ip_address: '0.0.0.0', port: 3261 }] }] }],
  });
  const configfs = mkdtempSync(path.join(os.tmpdir(), 'bootherd-configfs-'));
  t.teardown(() => rmSync(configfs, { recursive: true, force: true }));
  const backend = new TargetcliBackend({ run: fake.run, configfs });
  const r = await converge(backend, desiredOf('/d', ['n001']));
  t.same(r.plan.foreign, ['iqn.2003-01.org.linux-iscsi.head:sn.1']);
  const ours = fake.lio.targets.find((x) => x.wwn === `${P}n001`)!;
  t.same(ours.tpgs[0]!.node_acls, [{ node_wwn: `${I}n001`, mapped_luns: [{ index: 0, tpg_lun: 0 }], chap_userid: 'bootherd-n001-1', chap_password: 's-n001', chap_mutual_userid: 'bootherd-n001-1-target', chap_mutual_password: 'm-n001' }]);
  t.equal(ours.tpgs[0]!.attributes?.authentication, 1, 'CHAP required on the TPG');
  await converge(backend, desiredOf('/d', []));
  t.same(fake.lio.targets.map((x) => x.wwn), ['iqn.2003-01.org.linux-iscsi.head:sn.1'], 'the foreign target is still there');
  t.same(fake.lio.storage_objects.map((s) => s.name), ['handmade'], 'and its backstore');
  t.notOk(fake.changes().some((c) => c.join(' ').includes('handmade') || c.join(' ').includes('sn.1')), 'no command ever named them');
});

t.test('rtslib JSON: other fabrics and storage plugins are read but not ours', async (t) => {
  const s = parseRtslibDump({
    storage_objects: [{ name: 'r', plugin: 'ramdisk' }, { name: 'b', plugin: 'block', dev: '/dev/sdb' }],
    targets: [
      { wwn: 'naa.5001405', fabric: 'loopback', tpgs: [] },
      { wwn: 'iqn.x:y', fabric: 'iscsi', tpgs: [{ tag: 1, luns: [{ index: 3, storage_object: '/backstores/block/b' }, { index: 4, storage_object: '/backstores/ramdisk/r' }], attributes: { authentication: 1 }, node_acls: [{ node_wwn: 'iqn.a:b', chap_userid: 'u', chap_mutual_userid: 'm' }], portals: [{ ip_address: '10.0.0.1', port: 3260 }] }] },
    ],
  });
  t.same(s.backstores, [{ kind: 'block', name: 'b', path: '/dev/sdb' }]);
  t.same(s.targets, [{ iqn: 'iqn.x:y', luns: [{ lun: 3, path: '/dev/sdb', backstore: { kind: 'block', name: 'b' } }, { lun: 4, path: '/backstores/ramdisk/r' }], acls: ['iqn.a:b'], portals: [{ address: '10.0.0.1', port: 3260 }], auth: { incoming: ['u'], outgoing: ['m'] }, authRequired: true }], 'the ACL\'s CHAP users and the TPG\'s authentication attribute too');
});

const noLio = existsSync(LIO_CONFIGFS) ? false : `SKIPPED: ${LIO_CONFIGFS} does not exist, so this kernel has no LIO target and targetcli cannot run here; the command sequences above were checked against the recording fake only`;
if (noLio) t.comment(noLio);

t.test('the same sequences against the real targetcli', { skip: noLio }, async (t) => {
  const real = execRunner();
  const calls: string[][] = [];
  let seen = 0;
  const run: Runner = async (file, args) => { calls.push([...args]); return real(file, args); };
  const changes = () => {
    const all = calls.filter((c) => !(c[0] === 'saveconfig' && c.length === 2) && c[0] !== 'get');
    const out = all.slice(seen); seen = all.length; return out;
  };
  await runCases(t, run, changes, LIO_CONFIGFS);
});
