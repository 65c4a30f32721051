/**
 * The iSCSI service around the backends: start-up when the tool or the
 * target is missing (off, with the reason, never half-on), a tool failing
 * mid-way (its command and message surfaced, the next reconcile resumes), a
 * target that does not keep what it is told (reported as unexpected), model
 * changes reaching the target, per-node disks, and boot parameters.
 */
import t, { type Test } from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { ClusterModel } from '../../src/cluster/model.ts';
import { parseConfig, type Config } from '../../src/config/load.ts';
import { decode, encode } from '../../protocols/dhcp/codec.ts';
import { MessageType, Opt, readText, u8 } from '../../protocols/dhcp/options.ts';
import { buildReply } from '../../src/services/dhcp/reply.ts';
import { DhcpService } from '../../src/services/dhcp/service.ts';
import { createLogger, silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { ToolMissingError, type Runner } from '../../src/services/iscsi/backend.ts';
import { IscsiService } from '../../src/services/iscsi/service.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { fakeTargetcli } from '../helpers/fake-targetcli.ts';

const P = 'iqn.2024-01.test.lab.bootherd:';
/** iPXE's CHAP settings on the kernel line, which iPXE expands. */
const CHAP_SETTINGS = '${username}:${password}:${reverse-username}:${reverse-password}';
const I = 'iqn.2024-01.test.lab:';

interface Setup {
  readonly service: IscsiService;
  readonly model: ClusterModel;
  readonly dir: string;
  readonly logs: () => string;
  readonly metrics: Metrics;
  readonly config: Config;
}

/** extraNodes: node lines added to the cluster file; {dir} in them is the test's directory (its golden.img). */
async function setup(t: Test, opts: { backend: 'targetcli' | 'tgt'; run: Runner; configfs?: string; iscsi?: string; extraNodes?: string }): Promise<Setup> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-iscsi-svc-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // A stand-in for /sys/kernel/config/target, so that the LIO check passes and the fake runs.
  const configfs = opts.configfs ?? path.join(dir, 'configfs');
  if (!opts.configfs) mkdirSync(configfs);
  // The golden image: a recognisable first sector, then zeros.
  const golden = Buffer.alloc(256 << 10);
  golden.write('BOOTHERD GOLDEN IMAGE', 0);
  writeFileSync(path.join(dir, 'golden.img'), golden);
  const config = parseConfig(`
cluster: { domain: lab.test }
head: { address: 198.18.0.1 }
state: ${dir}/state
subnets: [{ network: 198.18.0.0/24, interface: eth0 }]
iscsi: { backend: ${opts.backend}, disks: ${dir}/disks, images: ${dir}, retry: 3600${opts.iscsi ?? ''} }
profiles:
  diskless: { kernel: vmlinuz, root: { kind: iscsi, image: ${dir}/golden.img, size: 1M } }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11, profile: diskless }
  - { name: n002, macs: [52:54:00:00:00:02], ip: 198.18.0.12 }
${(opts.extraNodes ?? '').replaceAll('{dir}', dir)}`, '<test>');
  const model = new ClusterModel(config, new MemoryStore());
  let out = '';
  const log = createLogger('debug', new Writable({ write(chunk, _enc, cb) { out += String(chunk); cb(); } }));
  const metrics = new Metrics();
  const service = new IscsiService({ config, model, log, metrics, run: opts.run, configfs });
  t.teardown(() => service.stop());
  return { service, model, dir, logs: () => out, metrics, config };
}

/** Waits for a condition, failing (not hanging) after a bound. */
async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('targetcli missing: iSCSI is off, says why at start and in status', async (t) => {
  const fake = fakeTargetcli();
  fake.missing = true;
  const s = await setup(t, { backend: 'targetcli', run: fake.run });
  await s.service.start();
  const st = s.service.status();
  t.equal(st.available, false);
  t.match(st.reason, /targetcli: targetcli not found on PATH \(install Debian's targetcli-fb\)/);
  t.match(s.logs(), /"level":50.*iSCSI is OFF: targetcli: targetcli not found/, 'one error line at start (a node wants iSCSI)');
  t.equal(s.service.bootParams(s.model.nodeByName('n001')!), undefined, 'no node is sent to an export that is not there');
  t.equal((await s.service.reconcile()).ok, false, 'nothing is half-done later either');
  t.equal(s.metrics.value('bootherd_iscsi_available'), 0);
});

t.test('no LIO in the kernel: off before targetcli is even run', async (t) => {
  const fake = fakeTargetcli();
  const s = await setup(t, { backend: 'targetcli', run: fake.run, configfs: '/nonexistent/config/target' });
  await s.service.start();
  t.match(s.service.status().reason, /no LIO target in this kernel: \/nonexistent\/config\/target does not exist/);
  t.same(fake.calls, []);
});

t.test('auto picks tgt where there is no LIO; tgtadm missing or tgtd down is reported', async (t) => {
  const missing: Runner = async (file) => { throw new ToolMissingError(file, "Debian's tgt"); };
  const a = await setup(t, { backend: 'tgt', run: missing, iscsi: '' });
  await a.service.start();
  t.match(a.service.status().reason, /^tgt: tgtadm not found on PATH/);
  const down: Runner = async () => ({ code: 107, stdout: '', stderr: "tgtadm: can't send the request to the tgt daemon, Transport endpoint is not connected\n" });
  const b = await setup(t, { backend: 'tgt', run: down, iscsi: ', tgt: { controlPort: 4242 }' });
  await b.service.start();
  t.match(b.service.status().reason, /tgtd is not answering on control port 4242 .*tgtadm -C 4242 --lld iscsi --mode target --op show failed \(exit 107\): tgtadm: can't send the request to the tgt daemon/);
});

t.test('iscsi.enabled false: off, and status says so', async (t) => {
  const fake = fakeTargetcli();
  const s = await setup(t, { backend: 'targetcli', run: fake.run, iscsi: ', enabled: false' });
  await s.service.start();
  t.match(s.service.status().reason, /iscsi\.enabled is false/);
  t.same(fake.calls, []);
});

t.test('targetcli failing mid-way: the failed command and its message surface; the next reconcile resumes', async (t) => {
  const fake = fakeTargetcli();
  fake.failAt(4, 'Could not create NetworkPortal in configFS');
  const s = await setup(t, { backend: 'targetcli', run: fake.run });
  await s.service.start();
  const st = s.service.status();
  t.equal(st.available, true, 'the backend is there; the reconcile failed');
  t.equal(st.lastReconcile?.ok, false);
  t.equal(st.lastReconcile?.applied, 3, 'backstore, target and default-portal removal went through');
  t.same(st.lastReconcile?.command, ['targetcli', `/iscsi/${P}n001/tpg1/portals`, 'create', 'ip_address=198.18.0.1', 'ip_port=3260']);
  t.match(st.lastReconcile?.error, /targetcli \/iscsi\/\S+\/tpg1\/portals create ip_address=198\.18\.0\.1 ip_port=3260 failed \(exit 1\): Could not create NetworkPortal in configFS/);
  t.match(s.logs(), /"command":"targetcli \/iscsi\/[^"]+\/tpg1\/portals create ip_address=198\.18\.0\.1 ip_port=3260"/);
  t.same(st.exports.map((e) => e.state), ['pending']);
  const before = fake.changes().length;
  const r = await s.service.reconcile();
  t.equal(r.ok, true);
  t.same(fake.changes().slice(before).map((c) => c.slice(0, 2).join(' ')), [
    `/iscsi/${P}n001/tpg1/portals create`, `/iscsi/${P}n001/tpg1/luns create`, `/iscsi/${P}n001/tpg1 set`,
    `/iscsi/${P}n001/tpg1/acls create`, `/iscsi/${P}n001/tpg1/acls/${I}n001 set`, 'saveconfig',
  ], 'only what was missing is done');
  t.same(s.service.status().exports.map((e) => e.state), ['exported']);
  t.equal(s.metrics.value('bootherd_iscsi_reconciles_total', { result: 'error' }), 1);
});

t.test('a target that does not keep what it is told: reported as an unexpected state', async (t) => {
  const fake = fakeTargetcli();
  fake.ignoreChanges = true;
  const s = await setup(t, { backend: 'targetcli', run: fake.run });
  await s.service.start();
  t.match(s.service.status().lastReconcile?.error, /unexpected state: after applying, targetcli still differs from the cluster model: create backstore fileio\/bootherd-n001/);
  t.equal(fake.saves, 0, 'nothing saved');
});

t.test('model changes reach the target; removal keeps the disk unless asked', async (t) => {
  const fake = fakeTargetcli();
  const s = await setup(t, { backend: 'targetcli', run: fake.run });
  await s.service.start();
  t.same(fake.lio.targets.map((x) => x.wwn), [`${P}n001`]);
  const disk = path.join(s.dir, 'disks', 'n001.img');
  t.equal(readFileSync(disk).subarray(0, 21).toString(), 'BOOTHERD GOLDEN IMAGE', 'the node\'s disk is a copy of the golden image');
  t.equal(statSync(disk).size, 1 << 20, 'grown to root.size');

  // Through the API: a node with its own root, and a node moved onto the iSCSI profile.
  await s.model.addNode({ name: 'n003', macs: ['52:54:00:00:00:03'], ip: '198.18.0.13', root: { kind: 'iscsi', image: path.join(s.dir, 'golden.img') } });
  await until('n003 exported', () => fake.lio.targets.some((x) => x.wwn === `${P}n003`));
  await until('status caught up', () => s.service.status().exports.every((e) => e.state === 'exported'));
  t.same(s.service.status().exports.map((e) => e.node), ['n001', 'n003']);
  t.equal(statSync(path.join(s.dir, 'disks', 'n003.img')).size, 256 << 10, 'no size: the image\'s own');

  await s.model.removeNode('n003');
  await until('n003 gone', () => !fake.lio.targets.some((x) => x.wwn === `${P}n003`));
  t.notOk(fake.lio.storage_objects.some((x) => x.name === 'bootherd-n003'), 'its backstore too');
  t.ok(existsSync(path.join(s.dir, 'disks', 'n003.img')), 'its disk is kept (iscsi.removeDisks is false)');
});

t.test('iscsi.removeDisks: a removed node\'s disk goes with its export', async (t) => {
  const fake = fakeTargetcli();
  const s = await setup(t, { backend: 'targetcli', run: fake.run, iscsi: ', removeDisks: true' });
  await s.service.start();
  await s.model.addNode({ name: 'n003', macs: ['52:54:00:00:00:03'], ip: '198.18.0.13', root: { kind: 'iscsi', image: path.join(s.dir, 'golden.img') } });
  await until('n003 exported', () => fake.lio.targets.some((x) => x.wwn === `${P}n003`));
  await s.model.removeNode('n003');
  await until('n003 disk removed', () => !existsSync(path.join(s.dir, 'disks', 'n003.img')));
  t.ok(existsSync(path.join(s.dir, 'disks', 'n001.img')), 'the others stay');
});

t.test('a node whose image is missing: that node is in error, the others are exported', async (t) => {
  const fake = fakeTargetcli();
  const s = await setup(t, { backend: 'targetcli', run: fake.run, extraNodes: '  - { name: n004, macs: [52:54:00:00:00:04], ip: 198.18.0.14, root: { kind: iscsi, image: "{dir}/missing.img" } }' });
  await s.service.start();
  const ex = s.service.status().exports;
  t.same(ex.map((e) => [e.node, e.state]), [['n001', 'exported'], ['n004', 'error']]);
  t.match(ex[1]!.error, /node n004: root\.image: golden image \/.*\/missing\.img: ENOENT/);
  t.same(fake.lio.targets.map((x) => x.wwn), [`${P}n001`]);
});

t.test('CHAP credentials: made once per node, kept (0600) across restarts, on the ACL, forgotten with the node, never in an error', async (t) => {
  const fake = fakeTargetcli();
  const s = await setup(t, { backend: 'targetcli', run: fake.run });
  await s.service.start();
  const file = path.join(s.config.stateDir, 'iscsi-chap.json');
  t.equal(statSync(file).mode & 0o777, 0o600, 'the secrets file is readable by its owner only');
  const c = JSON.parse(readFileSync(file, 'utf8')).nodes.n001;
  t.match(c, { user: /^bootherd-n001-[0-9a-f]{8}$/, secret: /^[A-Za-z0-9]{24}$/, mutualUser: `${c.user}-target`, mutualSecret: /^[A-Za-z0-9]{24}$/ });
  t.not(c.secret, c.mutualSecret, 'the two directions have different secrets');
  const acl = fake.lio.targets[0]!.tpgs[0]!.node_acls[0]!;
  t.match(acl, { chap_userid: c.user, chap_password: c.secret, chap_mutual_userid: c.mutualUser, chap_mutual_password: c.mutualSecret });
  t.equal(fake.lio.targets[0]!.tpgs[0]!.attributes?.authentication, 1);
  t.notOk(s.logs().includes(c.secret) || s.logs().includes(c.mutualSecret), 'no secret in the log');

  // A second service on the same state directory (a restart): the same credentials, nothing to change.
  const again = new IscsiService({ config: s.config, model: s.model, log: silentLogger, metrics: new Metrics(), run: fake.run, configfs: path.join(s.dir, 'configfs') });
  t.teardown(() => again.stop());
  const before = fake.changes().length;
  await again.start();
  t.same(again.chap.peek('n001'), c, 'the same credentials after a restart');
  t.same(fake.changes().slice(before), [], 'and no command');

  // A failing `set auth`: the error names the command with its secrets masked.
  await s.model.addNode({ name: 'n003', macs: ['52:54:00:00:00:03'], ip: '198.18.0.13', profile: 'diskless' });
  fake.failAt(8, 'Could not set auth'); // backstore, target, 2 portal changes, LUN, require-auth, ACL, then its auth
  const r = await s.service.reconcile();
  t.equal(r.ok, false);
  const c3 = s.service.chap.peek('n003')!;
  t.match(s.service.status().lastReconcile?.command, ['targetcli', `/iscsi/${P}n003/tpg1/acls/${I}n003`, 'set', 'auth', `userid=${c3.user}`, 'password=***', `mutual_userid=${c3.mutualUser}`, 'mutual_password=***']);
  t.notOk(JSON.stringify(s.service.status()).includes(c3.secret), 'no secret in the status the API shows');
  t.notOk(s.logs().includes(c3.secret) || s.logs().includes(c3.mutualSecret), 'nor in the log');

  await s.model.removeNode('n003');
  await s.service.reconcile();
  t.equal(s.service.chap.peek('n003'), undefined, 'a removed node\'s credentials are forgotten');
  t.ok(s.service.chap.peek('n001'));
});

t.test('boot parameters: root path, initiator name, kernel arguments', async (t) => {
  const fake = fakeTargetcli();
  const s = await setup(t, { backend: 'targetcli', run: fake.run });
  await s.service.start();
  const b = s.service.bootParams(s.model.nodeByName('n001')!)!;
  t.same(b, {
    targetIqn: `${P}n001`,
    initiatorIqn: `${I}n001`,
    portal: { address: '198.18.0.1', port: 3260 },
    lun: 0,
    rootPath: `iscsi:198.18.0.1::3260:0:${P}n001`,
    boot: 'sanboot',
    kernelArgs: `ip=dhcp rd.iscsi.initiator=${I}n001 netroot=iscsi:${CHAP_SETTINGS}@198.18.0.1::3260:0:${P}n001`,
  });
  t.equal(s.service.rootPath(s.model.nodeByName('n002')!), undefined, 'a node without an iSCSI root has none');
});

t.test('what the iPXE script is told about a node\'s root disk, case by case', async (t) => {
  const kernelNode = '  - { name: n005, macs: [52:54:00:00:00:05], ip: 198.18.0.15, root: { kind: iscsi, image: "{dir}/golden.img", boot: kernel } }';
  const missingImage = '  - { name: n004, macs: [52:54:00:00:00:04], ip: 198.18.0.14, root: { kind: iscsi, image: "{dir}/missing.img" } }';
  const on = fakeTargetcli();
  const off = fakeTargetcli();
  off.missing = true;
  const cases = [
    { name: 'exported, boot: sanboot', run: on.run, node: 'n001',
      want: { available: true, boot: 'sanboot', initiatorIqn: `${I}n001`, rootPath: `iscsi:198.18.0.1::3260:0:${P}n001`, kernelArgs: `ip=dhcp rd.iscsi.initiator=${I}n001 netroot=iscsi:${CHAP_SETTINGS}@198.18.0.1::3260:0:${P}n001`,
        chap: { username: /^bootherd-n001-[0-9a-f]{8}$/, password: /^[A-Za-z0-9]{24}$/, reverseUsername: /^bootherd-n001-[0-9a-f]{8}-target$/, reversePassword: /^[A-Za-z0-9]{24}$/ } } },
    { name: 'exported, boot: kernel (a node-level root)', run: on.run, node: 'n005',
      want: { available: true, boot: 'kernel', initiatorIqn: `${I}n005`, rootPath: `iscsi:198.18.0.1::3260:0:${P}n005`, kernelArgs: `ip=dhcp rd.iscsi.initiator=${I}n005 netroot=iscsi:${CHAP_SETTINGS}@198.18.0.1::3260:0:${P}n005` } },
    { name: 'no iSCSI root: nothing to say', run: on.run, node: 'n002', want: undefined },
    { name: 'its disk in error', run: on.run, node: 'n004',
      want: { available: false, reason: /^its disk could not be prepared \(node n004: root\.image: golden image \/.*\/missing\.img: ENOENT/ } },
    { name: 'iSCSI off: targetcli missing', run: off.run, node: 'n001',
      want: { available: false, reason: /^iSCSI is off \(targetcli: targetcli not found on PATH/ } },
  ];
  for (const c of cases) {
    const s = await setup(t, { backend: 'targetcli', run: c.run, extraNodes: `${kernelNode}\n${missingImage}` });
    await s.service.start();
    const got = s.service.rootDiskBoot(s.model.nodeByName(c.node)!);
    if (c.want === undefined) t.equal(got, undefined, c.name);
    else t.match(got, c.want, c.name);
  }
});

t.test('DHCP option 17: the node\'s iSCSI root path, to clients that ask for it, except iPXE', async (t) => {
  const fake = fakeTargetcli();
  const s = await setup(t, { backend: 'targetcli', run: fake.run });
  await s.service.start();
  const store = s.model.store;
  const dhcp = new DhcpService({ config: s.config, model: s.model, store, log: silentLogger, metrics: new Metrics(), httpBase: 'http://198.18.0.1', rootPath: (n) => s.service.rootPath(n) });
  const discover = (mac: string, prl: number[], extra: Array<[number, Buffer]> = []) => {
    const chaddr = Buffer.alloc(16);
    Buffer.from(mac.replace(/:/g, ''), 'hex').copy(chaddr);
    const bytes = encode({ op: 1, htype: 1, hlen: 6, hops: 0, xid: 7, secs: 0, flags: 0, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0, chaddr, sname: '', file: '',
      options: new Map([[Opt.MESSAGE_TYPE, u8(MessageType.DISCOVER)], [Opt.PARAMETER_LIST, Buffer.from(prl)], ...extra]) }).bytes;
    const ctx = dhcp.handle(bytes, 'eth0', Date.now(), true)!;
    return { reply: decode(buildReply(ctx).bytes), why: ctx.trace! };
  };
  const asked = discover('52:54:00:00:00:01', [1, 3, 17]);
  t.equal(readText(asked.reply.options.get(Opt.ROOT_PATH)), `iscsi:198.18.0.1::3260:0:${P}n001`);
  t.match(asked.why.join('\n'), /root-path: iscsi:/);
  t.notOk(discover('52:54:00:00:00:01', [1, 3]).reply.options.has(Opt.ROOT_PATH), 'not sent unasked');
  t.notOk(discover('52:54:00:00:00:02', [1, 3, 17]).reply.options.has(Opt.ROOT_PATH), 'a node without an iSCSI root gets none');
  // iPXE would hook the path before fetching its script, with a default initiator name the ACL refuses.
  const ipxe = discover('52:54:00:00:00:01', [1, 3, 17], [[Opt.USER_CLASS, Buffer.from('iPXE')]]);
  t.notOk(ipxe.reply.options.has(Opt.ROOT_PATH), 'not to iPXE (user class), whose script sanboots it');
  t.match(ipxe.why.join('\n'), /root-path: not to iPXE/);
  t.notOk(discover('52:54:00:00:00:01', [1, 3, 17], [[Opt.IPXE, Buffer.from([1, 1, 1])]]).reply.options.has(Opt.ROOT_PATH), 'nor to iPXE known by its option 175');
});
