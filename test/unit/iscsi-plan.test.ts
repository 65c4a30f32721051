/**
 * The reconcile planner, case by case: desired exports and actual target
 * state in, ordered operations out, for both backend shapes.
 */
import t from 'tap';
import { plan, type BackendShape, type Op } from '../../src/services/iscsi/plan.ts';
import type { DesiredExport, DesiredState, TargetState, TargetSystemState } from '../../src/services/iscsi/state.ts';

const LIO: BackendShape = { lun: 0, backstores: true, portals: 'target', acl: 'initiator', chap: 'acl' };
const TGT: BackendShape = { lun: 1, backstores: false, portals: 'daemon', acl: 'address', chap: 'accounts' };
const P = 'iqn.2024-01.test.lab.bootherd:';
const I = 'iqn.2024-01.test.lab:';
const PORTAL = { address: '198.18.0.1', port: 3260 };
const ANY = { address: '0.0.0.0', port: 3260 };

const ADDR: Record<string, string> = { n001: '198.18.0.11', n002: '198.18.0.12', n003: '198.18.0.13' };
const chapOf = (node: string) => ({ user: `bootherd-${node}-1`, secret: `s-${node}`, mutualUser: `bootherd-${node}-1-target`, mutualSecret: `m-${node}` });
const exp = (node: string, path = `/d/${node}.img`): DesiredExport => ({ node, iqn: P + node, initiator: I + node, address: ADDR[node] ?? '198.18.0.99', chap: chapOf(node), disk: { kind: 'file', path } });
const want = (...exports: DesiredExport[]): DesiredState => ({ exports, portal: PORTAL, targetPrefix: P, backstorePrefix: 'bootherd-', accountPrefix: 'bootherd-' });
const empty: TargetSystemState = { targets: [], backstores: [], portals: [], accounts: [] };
const NO_AUTH = { incoming: [], outgoing: [] };

/** The LIO state of exports in place. */
function lio(...exports: DesiredExport[]): TargetSystemState {
  return {
    targets: exports.map((e) => ({ iqn: e.iqn, luns: [{ lun: 0, path: e.disk.path, backstore: { kind: 'fileio', name: `bootherd-${e.node}` } }], acls: [e.initiator], portals: [PORTAL], auth: { incoming: [e.chap.user], outgoing: [e.chap.mutualUser] }, authRequired: true })),
    backstores: exports.map((e) => ({ kind: 'fileio', name: `bootherd-${e.node}`, path: e.disk.path })),
    portals: [],
    accounts: [],
    defaultPortal: ANY,
  };
}

/** The tgt state of exports in place. */
function tgt(...exports: DesiredExport[]): TargetSystemState {
  return {
    targets: exports.map((e) => ({ iqn: e.iqn, luns: [{ lun: 1, path: e.disk.path }], acls: [e.address], portals: [], auth: { incoming: [e.chap.user], outgoing: [e.chap.mutualUser] } })),
    backstores: [], portals: [PORTAL], accounts: exports.flatMap((e) => [e.chap.user, e.chap.mutualUser]),
  };
}

const ops = (o: readonly Op[]) => o.map((x) => Object.values(x).map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(' '));

t.test('LIO: first export of a node', async (t) => {
  const p = plan(want(exp('n001')), { ...empty, defaultPortal: ANY }, LIO);
  t.same(ops(p.ops), [
    'create-backstore fileio bootherd-n001 /d/n001.img',
    `create-target ${P}n001`,
    `remove-portal ${P}n001 ${JSON.stringify(ANY)}`,
    `add-portal ${P}n001 ${JSON.stringify(PORTAL)}`,
    `create-lun ${P}n001 0 /d/n001.img {"kind":"fileio","name":"bootherd-n001"}`,
    `require-auth ${P}n001`,
    `add-acl ${P}n001 ${I}n001`,
    `set-acl-auth ${P}n001 ${I}n001 ${JSON.stringify(chapOf('n001'))}`,
  ], 'backstore, target, our portal in place of the default one, LUN, CHAP required, then the ACL and its credentials');
});

t.test('LIO: no default portal to remove when targetcli adds none', async (t) => {
  const p = plan(want(exp('n001')), empty, LIO);
  t.notOk(p.ops.some((o) => o.op === 'remove-portal'));
});

t.test('tgt: first export adds the daemon portal once, LUN 1', async (t) => {
  const p = plan(want(exp('n001'), exp('n002')), empty, TGT);
  t.same(ops(p.ops), [
    `add-portal ${JSON.stringify(PORTAL)}`,
    ...['n001', 'n002'].flatMap((n) => [
      `create-target ${P}${n}`, `create-lun ${P}${n} 1 /d/${n}.img`,
      `create-account bootherd-${n}-1 s-${n}`, `bind-account ${P}${n} bootherd-${n}-1 false`,
      `create-account bootherd-${n}-1-target m-${n}`, `bind-account ${P}${n} bootherd-${n}-1-target true`,
      `add-acl ${P}${n} ${ADDR[n]}`,
    ]),
  ], 'per node: target, LUN, its CHAP accounts bound (incoming, outgoing), and only then the ACL: its address');
});

t.test('tgt: a wildcard portal on our port already serves', async (t) => {
  const p = plan(want(exp('n001')), { ...tgt(exp('n001')), portals: [ANY] }, TGT);
  t.same(p.ops, []);
});

t.test('in sync: nothing to do (idempotent)', async (t) => {
  t.same(plan(want(exp('n001'), exp('n002')), lio(exp('n001'), exp('n002')), LIO).ops, []);
  t.same(plan(want(exp('n001'), exp('n002')), tgt(exp('n001'), exp('n002')), TGT).ops, []);
});

t.test('node removed: its target goes, and on LIO its backstore; the disk is released, not deleted', async (t) => {
  const l = plan(want(exp('n001')), lio(exp('n001'), exp('n002')), LIO);
  t.same(ops(l.ops), [`delete-target ${P}n002`, 'delete-backstore fileio bootherd-n002']);
  t.same(l.releasedDisks, ['/d/n002.img']);
  const g = plan(want(), tgt(exp('n001')), TGT);
  t.same(ops(g.ops), [`delete-target ${P}n001`, 'delete-account bootherd-n001-1', 'delete-account bootherd-n001-1-target'], 'tgt: its CHAP accounts go too');
});

t.test('disk moved: LUN and backstore replaced, removals before creations', async (t) => {
  const p = plan(want(exp('n001', '/e/n001.img')), lio(exp('n001')), LIO);
  t.same(ops(p.ops), [
    `delete-lun ${P}n001 0`,
    'delete-backstore fileio bootherd-n001',
    'create-backstore fileio bootherd-n001 /e/n001.img',
    `create-lun ${P}n001 0 /e/n001.img {"kind":"fileio","name":"bootherd-n001"}`,
  ]);
  const g = plan(want(exp('n001', '/e/n001.img')), tgt(exp('n001')), TGT);
  t.same(ops(g.ops), [`delete-lun ${P}n001 1`, `create-lun ${P}n001 1 /e/n001.img`]);
});

t.test('our target, changed by hand: stray ACL, LUN and portal go, the missing ACL comes', async (t) => {
  const actual = lio(exp('n001'));
  const hand: TargetState = { ...actual.targets[0]!, acls: ['iqn.1999-01.com.example:intruder'], portals: [PORTAL, ANY], luns: [...actual.targets[0]!.luns, { lun: 5, path: '/x', backstore: { kind: 'fileio', name: 'x' } }] };
  const p = plan(want(exp('n001')), { ...actual, targets: [hand] }, LIO);
  t.same(ops(p.ops), [
    `delete-lun ${P}n001 5`,
    `remove-acl ${P}n001 iqn.1999-01.com.example:intruder`,
    `remove-portal ${P}n001 ${JSON.stringify(ANY)}`,
    `add-acl ${P}n001 ${I}n001`,
    `set-acl-auth ${P}n001 ${I}n001 ${JSON.stringify(chapOf('n001'))}`,
  ]);
});

t.test('tgt: the ACL is the node\'s address; a name entry (public, and tgt admits address OR name) goes', async (t) => {
  const actual = tgt(exp('n001'));
  const hand: TargetState = { ...actual.targets[0]!, acls: ['198.18.0.11', `${I}n001`, 'ALL'] };
  t.same(ops(plan(want(exp('n001')), { ...actual, targets: [hand] }, TGT).ops), [`remove-acl ${P}n001 ${I}n001`, `remove-acl ${P}n001 ALL`]);
});

t.test('tgt: new credentials (a new user name) replace the old accounts; accounts not ours stay', async (t) => {
  const before = exp('n001');
  const after: DesiredExport = { ...before, chap: { user: 'bootherd-n001-2', secret: 'new', mutualUser: 'bootherd-n001-2-target', mutualSecret: 'newm' } };
  const actual = tgt(before);
  t.same(ops(plan(want(after), { ...actual, accounts: [...actual.accounts, 'admin'] }, TGT).ops), [
    `unbind-account ${P}n001 bootherd-n001-1 false`,
    `unbind-account ${P}n001 bootherd-n001-1-target true`,
    'delete-account bootherd-n001-1',
    'delete-account bootherd-n001-1-target',
    'create-account bootherd-n001-2 new', `bind-account ${P}n001 bootherd-n001-2 false`,
    'create-account bootherd-n001-2-target newm', `bind-account ${P}n001 bootherd-n001-2-target true`,
  ]);
});

t.test('tgt: a target without its accounts bound (CHAP off) gets them back', async (t) => {
  const actual = tgt(exp('n001'));
  const open: TargetState = { ...actual.targets[0]!, auth: NO_AUTH };
  t.same(ops(plan(want(exp('n001')), { ...actual, targets: [open] }, TGT).ops), [
    `bind-account ${P}n001 bootherd-n001-1 false`, `bind-account ${P}n001 bootherd-n001-1-target true`,
  ], 'the accounts exist: bound again, not created');
});

t.test('LIO: CHAP switched off by hand (attribute, ACL credentials) is switched on again', async (t) => {
  const actual = lio(exp('n001'));
  const open: TargetState = { ...actual.targets[0]!, auth: NO_AUTH, authRequired: false };
  t.same(ops(plan(want(exp('n001')), { ...actual, targets: [open] }, LIO).ops), [
    `require-auth ${P}n001`,
    `set-acl-auth ${P}n001 ${I}n001 ${JSON.stringify(chapOf('n001'))}`,
  ]);
});

t.test('foreign targets are reported and never touched', async (t) => {
  const foreign: TargetState = { iqn: 'iqn.2003-01.org.linux-iscsi.head:sn.1234', luns: [{ lun: 0, path: '/srv/other.img', backstore: { kind: 'fileio', name: 'other' } }], acls: [], portals: [ANY], auth: NO_AUTH };
  const actual = lio(exp('n001'));
  const p = plan(want(), { ...actual, targets: [...actual.targets, foreign], backstores: [...actual.backstores, { kind: 'fileio', name: 'other', path: '/srv/other.img' }] }, LIO);
  t.same(ops(p.ops), [`delete-target ${P}n001`, 'delete-backstore fileio bootherd-n001'], 'only ours go; the foreign backstore stays (not our name)');
  t.same(p.foreign, [foreign.iqn]);
});

t.test('a foreign target on a backstore with our name: warned about, left alone, that node skipped', async (t) => {
  const foreign: TargetState = { iqn: 'iqn.2003-01.org.example:hand', luns: [{ lun: 0, path: '/old.img', backstore: { kind: 'fileio', name: 'bootherd-n001' } }], acls: [], portals: [], auth: NO_AUTH };
  const p = plan(want(exp('n001'), exp('n002')), { targets: [foreign], backstores: [{ kind: 'fileio', name: 'bootherd-n001', path: '/old.img' }], portals: [], accounts: [] }, LIO);
  t.equal(p.warnings.length, 1);
  t.match(p.warnings[0], /foreign target iqn\.2003-01\.org\.example:hand uses it/);
  t.same(p.skipped, ['n001']);
  t.notOk(p.ops.some((o) => 'iqn' in o && o.iqn === P + 'n001'), 'no operation on the skipped node');
  t.notOk(p.ops.some((o) => o.op === 'delete-backstore'), 'the backstore a foreign target uses is not deleted');
  t.ok(p.ops.some((o) => o.op === 'create-target' && o.iqn === P + 'n002'), 'the other node goes ahead');
});

t.test('leave: a node whose disk could not be prepared keeps its target as it is', async (t) => {
  const p = plan({ ...want(), leave: [P + 'n001'] }, tgt(exp('n001')), TGT);
  t.same(p.ops, []);
});

t.test('block device exports use a block backstore on LIO', async (t) => {
  const e: DesiredExport = { ...exp('n001'), disk: { kind: 'block', path: '/dev/vg0/root-n001' } };
  const p = plan(want(e), empty, LIO);
  t.same(ops(p.ops)[0], 'create-backstore block bootherd-n001 /dev/vg0/root-n001');
  // Switching the node from a file to a device replaces the fileio backstore.
  const q = plan(want(e), lio(exp('n001')), LIO);
  t.same(ops(q.ops), [
    `delete-lun ${P}n001 0`,
    'delete-backstore fileio bootherd-n001',
    'create-backstore block bootherd-n001 /dev/vg0/root-n001',
    `create-lun ${P}n001 0 /dev/vg0/root-n001 {"kind":"block","name":"bootherd-n001"}`,
  ]);
});
