/**
 * The Debian package, end to end: `npm run package` in a clean clone of this
 * repository (its node_modules linked to this checkout's: no network), `dpkg
 * -i` into a fresh root (an overlay of the host's / in a chroot, so the
 * dependencies are present and the host's dpkg database is untouched), the
 * installed `bootherd serve --user bootherd` serving a lab's cluster file
 * from /etc/bootherd/cluster.yaml in the unit's file-system view (read-only
 * but for its state and log directories, a /tmp of its own), a QEMU VM
 * PXE-booting from it with its root disk over iSCSI (the lab's tgtd, driven
 * by tgtadm through the root supervisor), and `dpkg -r`: the program goes,
 * the state and the logs stay.
 */
import t from 'tap';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { labNode } from '../../src/lab/cluster.ts';
import { assertNodeBoot } from '../helpers/lab-boot-checks.ts';
import { headJson } from '../../src/lab/running.ts';
import { bootherd, labBootForTest, labUpForTest } from '../helpers/lab-vm.ts';
import { missingTools } from '../helpers/tools.ts';

// Build, lab up, a VM boot: past the suite's 300 s default.
t.setTimeout(15 * 60_000);

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const sh = (cmd: string, args: readonly string[], opts: { cwd?: string; timeoutMs?: number } = {}) => {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
};

t.test('build, install into a fresh root, serve a lab, boot a VM, remove', { skip: missingTools('dpkg-deb', 'chroot') }, async (t) => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'bootherd-bhi-pkg-'));
  const mounts: string[] = [];
  const mount = (args: readonly string[], target: string) => { sh('mount', [...args, target]); mounts.push(target); };
  t.teardown(() => {
    for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
    rmSync(work, { recursive: true, force: true });
  });

  // 1. A clean clone, the package built in it.
  const clone = path.join(work, 'clone');
  sh('git', ['clone', '-q', REPO, clone]);
  symlinkSync(realpathSync(path.join(REPO, 'node_modules')), path.join(clone, 'node_modules'));
  const built = sh('npm', ['run', '--silent', 'package', '--', path.join(work, 'dist')], { cwd: clone, timeoutMs: 10 * 60_000 }).trim().split('\n').at(-1)!;
  const version = JSON.parse(readFileSync(path.join(clone, 'package.json'), 'utf8')).version as string;
  t.equal(path.basename(built), `bootherd_${version}_${sh('dpkg', ['--print-architecture']).trim()}.deb`, 'npm run package builds bootherd_<version>_<arch>.deb');
  const info = sh('dpkg-deb', ['-f', built, 'Depends']);
  t.match(info, /nodejs \(>= 20\)/, 'it depends on Node 20 or later');
  t.notMatch(info, /qemu|tcpdump|dhcp-client|kea|chromium|dnsutils/, 'and on no test tool');
  t.same(readConffiles(built), ['/etc/bootherd/cluster.yaml', '/etc/logrotate.d/bootherd'], 'conffiles: the cluster file and the logrotate file');

  // 2. A fresh root: the host's / as the lower layer of an overlay, written only in a tmpfs.
  const layers = path.join(work, 'layers');
  mkdirSync(layers);
  mount(['-t', 'tmpfs', 'tmpfs'], layers);
  for (const d of ['upper', 'work', 'root']) mkdirSync(path.join(layers, d));
  const root = path.join(layers, 'root');
  mount(['-t', 'overlay', 'overlay', '-o', `lowerdir=/,upperdir=${layers}/upper,workdir=${layers}/work`], root);
  mount(['-t', 'proc', 'proc'], path.join(root, 'proc'));
  mount(['--rbind', '/dev'], path.join(root, 'dev'));
  t.notOk(existsSync(path.join(root, 'usr/lib/bootherd')), 'the fresh root has no bootherd');
  const inRoot = (cmd: string, args: readonly string[], timeoutMs?: number) => sh('chroot', [root, cmd, ...args], { timeoutMs });
  copyFileSync(built, path.join(root, 'tmp/bootherd.deb'));
  inRoot('dpkg', ['-i', '/tmp/bootherd.deb']);
  t.match(inRoot('dpkg-query', ['-W', '-f', '${Status}', 'bootherd']), /install ok installed/, 'dpkg -i installs it, its dependencies present');
  t.match(inRoot('getent', ['passwd', 'bootherd']), /^bootherd:x:\d+:\d+:.*:\/var\/lib\/bootherd:/, 'postinst made the bootherd system user');
  const uid = Number(inRoot('id', ['-u', 'bootherd']).trim());
  for (const d of ['var/lib/bootherd', 'var/log/bootherd']) {
    const st = statSync(path.join(root, d));
    t.ok(st.uid === uid && (st.mode & 0o777) === 0o750, `/${d} is bootherd's, 0750`);
  }
  t.match(inRoot('bootherd', ['check', '--config', '/etc/bootherd/cluster.yaml']), /valid/, 'the example cluster file checks');
  t.match(readFileSync(path.join(root, 'etc/bootherd/cluster.yaml'), 'utf8'), /dhcp: \{ enabled: false \}/, 'and serves nothing until edited');
  const verify = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${root}`, 'bootherd.service'], { encoding: 'utf8' });
  t.equal(verify.status, 0, `systemd-analyze verify of the installed unit (${verify.stderr.trim()})`);

  // 3. The installed program serving a lab: the lab's own server stopped, the installed one started in its namespace.
  // With --iscsi: n001's root over iSCSI from the lab's tgtd, driven by the installed server through its root supervisor.
  const lab = await labUpForTest(t, 'bhipkg', 1, ['--iscsi']);
  const head = lab.heads[0]!;
  const killed = await bootherd(['lab', 'kill-head', '--name', lab.name, '1'], 60_000);
  t.equal(killed.code, 0, 'the lab\'s own bootherd is stopped');
  // tgtadm reaches tgtd by its socket in /run/tgtd: the host's, not the overlay's view of it.
  for (const dir of [lab.dir, lab.imageDir, '/run/tgtd']) {
    mkdirSync(path.join(root, dir), { recursive: true });
    mount(['--bind', dir], path.join(root, dir));
  }
  // The admin edits the conffile: the lab's cluster, with the package's state and log directories.
  const labFile = readFileSync(head.configFile, 'utf8');
  // The disk copies stay where the lab's server made them: tgtd runs outside the fresh root and opens them by path.
  const disks = path.join(head.stateDir, 'iscsi');
  sh('chown', ['-R', `${uid}:${uid}`, disks]);
  writeFileSync(path.join(root, 'etc/bootherd/cluster.yaml'), labFile
    .replace(/^state: .*$/m, 'state: /var/lib/bootherd\nhttp: { logDir: /var/log/bootherd }')
    .replace(/^iscsi:$/m, `iscsi:\n  disks: ${disks}`));
  // The lab's tools read the API token from the lab's state directory: the installed server gets the same one.
  const token = path.join(root, 'var/lib/bootherd/api-token');
  copyFileSync(path.join(head.stateDir, 'api-token'), token);
  chownSync(token, uid, uid);
  // The unit's file-system view without systemd: in a mount namespace of its own, the root read-only
  // (ProtectSystem=strict) but for the state and log directories, and a /tmp of its own (PrivateTmp).
  // The lab's directories are bound again over the private /tmp: a clone under /tmp (as CI's may be) has its boot files there.
  const labDirs = [lab.dir, lab.imageDir, '/run/tgtd'].filter((d) => d.startsWith('/tmp/')).join(' ');
  const unitView = (argv: readonly string[]) => ['netns', 'exec', head.ns, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c',
    'set -e; r=$1; shift; for d in var/lib/bootherd var/log/bootherd; do mount --bind "$r/$d" "$r/$d"; done; ' +
    `mount -t tmpfs tmpfs "$r/tmp"; for d in ${labDirs}; do mkdir -p "$r$d"; mount --bind "$d" "$r$d"; done; ` +
    // tap's process tracking puts NODE_OPTIONS into every child's environment, even a given one: not the service's.
    'mount -o remount,bind,ro "$r"; unset NODE_OPTIONS; exec chroot "$r" "$@"', 'sh', root, ...argv];
  // The environment systemd gives a service, not the test runner's.
  const server = spawn('ip', unitView(['/usr/bin/bootherd', 'serve', '--user', 'bootherd', '--config', '/etc/bootherd/cluster.yaml']), { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' } });
  let log = '';
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  t.teardown(async () => { if (server.exitCode === null && server.signalCode === null) { server.kill('SIGTERM'); await exited; } });
  await new Promise<void>((resolve, reject) => {
    server.stderr.on('data', (d: Buffer) => { log += d.toString(); if (log.includes('"msg":"bootherd started"')) resolve(); });
    server.once('exit', (code) => reject(new Error(`the installed bootherd exited (${code}):\n${log}`)));
  });
  t.pass('the installed bootherd serves the lab from /etc/bootherd/cluster.yaml as the bootherd user, in the unit\'s file-system view');
  // What the service's user can write in that view: its two directories, nothing else (root's files are read-only even to root).
  const writes = (as: 'bootherd' | 'root', file: string) => spawnSync('ip', unitView(as === 'root' ? ['touch', file] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'touch', file]), { encoding: 'utf8' });
  for (const dir of ['/var/lib/bootherd', '/var/log/bootherd']) t.equal(writes('bootherd', `${dir}/probe`).status, 0, `bootherd can write ${dir}`);
  for (const file of ['/etc/bootherd/probe', '/usr/lib/bootherd/probe', '/var/tmp/bootherd-probe']) {
    const r = writes('root', file);
    t.ok(r.status !== 0 && /Read-only file system/.test(r.stderr), `${file}: read-only in the unit's view, even to root`);
  }
  const iscsi = (await headJson<{ services: { iscsi: { available: boolean; backend: string; exports: Array<{ node: string; state: string }> } } }>(lab, ['status'])).services.iscsi;
  t.match(iscsi, { available: true, backend: 'tgt' }, 'its iSCSI backend works: tgtadm through the root supervisor', { status: iscsi, log: log.split('\n').filter((l) => l.includes('iscsi')).slice(-10) });
  t.same(iscsi.exports.map((e) => [e.node, e.state]), [['n001', 'exported']], 'n001\'s root disk is exported');
  const { run, report } = await labBootForTest(lab, ['--firmware', 'bios'], 'package');
  t.ok(report?.ok, 'a QEMU VM PXE-boots n001 from it', { code: run.code, problems: report?.problems, stderr: run.stderr.slice(-2000) });
  if (report) await assertNodeBoot(t, lab, report, labNode(0), false, true);
  server.kill('SIGTERM');
  await exited;
  const access = path.join(root, 'var/log/bootherd/api_access_log');
  t.ok(existsSync(access) && statSync(access).size > 0, 'its HTTP requests are in /var/log/bootherd/api_access_log');
  t.ok(readdirSync(path.join(root, 'var/lib/bootherd')).length > 1, 'its state is in /var/lib/bootherd');

  // 4. Removed: the program goes; the state, the logs and the edited conffile stay.
  inRoot('dpkg', ['-r', 'bootherd']);
  t.notOk(existsSync(path.join(root, 'usr/lib/bootherd')), 'dpkg -r removes /usr/lib/bootherd');
  t.notOk(existsSync(path.join(root, 'usr/bin/bootherd')), 'and /usr/bin/bootherd');
  t.ok(statSync(access).size > 0, 'the logs stay');
  t.ok(existsSync(path.join(root, 'var/lib/bootherd/api-token')), 'the state stays');
  t.ok(existsSync(path.join(root, 'etc/bootherd/cluster.yaml')), 'the edited cluster file stays (a conffile, until purge)');
});

function readConffiles(deb: string): string[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-ctrl-'));
  try {
    execFileSync('dpkg-deb', ['--control', deb, dir]);
    return readFileSync(path.join(dir, 'conffiles'), 'utf8').split('\n').filter(Boolean);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
