/**
 * Boot over HTTP with real clients in lab namespaces: ISC dhclient for the
 * address, curl for the iPXE script and the boot files (whole, HEAD, ranges,
 * sha256, path traversal), busybox wget for the "booted" call-back a node's
 * init makes, and the bootherd CLI for a node added at run time, which gets
 * its script and its DHCP reservation at once.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BIN, startLabServer } from '../helpers/lab-server.ts';

const KNOWN = '52:54:00:00:00:01';
const LATE = '52:54:00:00:00:99';
const HEAD = 'http://198.18.0.1';
const kernel = randomBytes(3 << 20);
const initrd = randomBytes(5 << 20 | 123);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const config = (state: string) => {
  const files = path.join(path.dirname(state), 'files');
  mkdirSync(path.join(files, 'images'), { recursive: true });
  writeFileSync(path.join(files, 'images', 'vmlinuz'), kernel);
  writeFileSync(path.join(files, 'images', 'initrd.img'), initrd);
  return `
cluster: { domain: lab.test }
head: { name: head, address: 198.18.0.1 }
state: ${state}
files: ${files}
subnets:
  - network: 198.18.0.0/24
    interface: eth0
    pool: 198.18.0.100-198.18.0.150
profiles:
  default: { kernel: images/vmlinuz, initrd: images/initrd.img, cmdline: console=ttyS0 }
nodes:
  - { name: n001, macs: [${KNOWN}], ip: 198.18.0.11 }
`;
};

t.test('a node boots over HTTP: script, kernel, initrd, booted; the timeline has every stage', async (t) => {
  const s = await startLabServer(t, { tag: 'hb', clients: 2, clientMac: (i) => [KNOWN, LATE][i]!, config });
  const [known, late] = s.lab.clients as [typeof s.lab.clients[0], typeof s.lab.clients[0]];
  // dhclient with -sf /bin/true leaves the interface alone; the test puts the leased address on it.
  // As PXE firmware: vendor class PXEClient and architecture 0 (BIOS), so DHCP starts a boot timeline.
  const pxeConf = path.join(s.dir, 'pxe-dhclient.conf');
  writeFileSync(pxeConf, 'option pxe-arch code 93 = unsigned integer 16;\nsend pxe-arch 0;\nsend vendor-class-identifier "PXEClient:Arch:00000:UNDI:002001";\n');
  const dhclient = (ns: string, leases: string) => {
    s.lab.exec(ns, 'dhclient', ['-1', '-cf', pxeConf, '-lf', path.join(s.dir, leases), '-pf', path.join(s.dir, `${ns}.pid`), '-sf', '/bin/true', 'eth0'], 30_000);
    const ip = /fixed-address ([\d.]+);/.exec(readFileSync(path.join(s.dir, leases), 'utf8'))?.[1];
    if (ip) s.lab.exec(ns, 'ip', ['addr', 'replace', `${ip}/24`, 'dev', 'eth0']);
  };
  const curl = (ns: string, ...args: string[]) => s.lab.run(ns, 'curl', ['-sS', '--max-time', '20', ...args], 30_000);
  const sh = (ns: string, cmd: string) => s.lab.exec(ns, 'sh', ['-c', cmd], 30_000);
  const cli = (...args: string[]) => s.lab.run(s.lab.head.ns, process.execPath, [BIN, ...args, '--config', s.configFile], 30_000);

  dhclient(known.ns, 'known.leases');
  const lease = readFileSync(path.join(s.dir, 'known.leases'), 'utf8');
  t.match(lease, /fixed-address 198\.18\.0\.11;/, 'DHCP reservation first');
  t.match(lease, /filename "undionly\.kpxe";/, 'and the BIOS loader');
  t.equal(curl(known.ns, '-o', '/dev/null', '-w', '%{http_code}', `${HEAD}/loaders/undionly.kpxe`).stdout, '200', 'the loader over HTTP (as UEFI HTTP boot fetches it)');

  const script = curl(known.ns, '-f', `${HEAD}/boot/52-54-00-00-00-01.ipxe`).stdout;
  t.match(script, /^#!ipxe\n/);
  t.match(script, `kernel --name vmlinuz ${HEAD}/files/images/vmlinuz initrd=initrd.img console=ttyS0 bootherd_booted=${HEAD}/boot/52-54-00-00-00-01/booted`);
  t.match(script, `initrd --name initrd.img ${HEAD}/files/images/initrd.img`);

  t.equal(sh(known.ns, `curl -sSf --max-time 20 ${HEAD}/files/images/vmlinuz | sha256sum`).split(' ')[0], sha256(kernel), 'kernel: whole file, same sha256');
  t.equal(sh(known.ns, `curl -sSf --max-time 20 ${HEAD}/files/images/initrd.img | sha256sum`).split(' ')[0], sha256(initrd), 'initrd: whole file, same sha256');

  const head = curl(known.ns, '-I', `${HEAD}/files/images/initrd.img`).stdout;
  t.match(head, /^HTTP\/1\.1 200 OK/);
  t.match(head, new RegExp(`content-length: ${initrd.length}\\r`, 'i'), 'HEAD: the exact length');
  t.match(head, /accept-ranges: bytes/i);

  const part = sh(known.ns, `curl -sSf --max-time 20 -r 1000-1999 ${HEAD}/files/images/initrd.img | sha256sum`).split(' ')[0];
  t.equal(part, sha256(initrd.subarray(1000, 2000)), 'Range: the right bytes');
  const partHead = curl(known.ns, '-s', '-o', '/dev/null', '-D', '-', '-r', `${initrd.length - 10}-`, `${HEAD}/files/images/initrd.img`).stdout;
  t.match(partHead, /^HTTP\/1\.1 206 Partial Content/);
  t.match(partHead, new RegExp(`content-range: bytes ${initrd.length - 10}-${initrd.length - 1}/${initrd.length}`, 'i'));
  t.match(partHead, /content-length: 10\r/i);
  const past = curl(known.ns, '-o', '/dev/null', '-w', '%{http_code}', '-r', `${initrd.length}-`, `${HEAD}/files/images/initrd.img`).stdout;
  t.equal(past, '416', 'a range past the end: 416');
  // Resume: what curl -C does after a broken download.
  sh(known.ns, `curl -sSf --max-time 20 -r 0-99999 -o /tmp/${known.ns}.part ${HEAD}/files/images/initrd.img && curl -sSf --max-time 20 -C - -o /tmp/${known.ns}.part ${HEAD}/files/images/initrd.img`);
  t.equal(sha256(readFileSync(`/tmp/${known.ns}.part`)), sha256(initrd), 'a resumed download is whole');

  for (const p of ['/files/../cluster.yaml', '/files/images/../../cluster.yaml', '/files/%2e%2e/cluster.yaml', '/loaders/../../package.json', '/files/..%2fcluster.yaml']) {
    const r = curl(known.ns, '--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', `${HEAD}${p}`).stdout;
    t.equal(r, '400', `path traversal ${p}: 400`);
  }
  t.equal(curl(known.ns, '-o', '/dev/null', '-w', '%{http_code}', `${HEAD}/files/images/nope`).stdout, '404');

  // The node's init calls back with busybox wget, using the URL the script put on its command line.
  const booted = /^kernel .* bootherd_booted=(\S+)/m.exec(script)![1]!;
  t.match(s.lab.exec(known.ns, 'busybox', ['wget', '-q', '-O', '-', booted]), /^ok n001/);

  const show = cli('nodes', 'show', 'n001', '--json');
  t.equal(show.code, 0, show.stderr);
  const stages = (JSON.parse(show.stdout) as { boot: { stages: Array<{ stage: string }> } }).boot.stages.map((x) => x.stage);
  t.same(stages.filter((x, i) => stages.indexOf(x) === i), ['dhcp-offer', 'dhcp-ack', 'tftp-loader', 'ipxe-script', 'kernel', 'initrd', 'booted'], 'every stage, in order');
  t.match(cli('nodes', 'show', 'n001').stdout, /booted\s+\S+Z\s+\d+\.\d/, 'the CLI shows the timeline');

  // A machine nobody knows gets the discovery script; added through the API, it gets its own script and reservation at once.
  dhclient(late.ns, 'late1.leases');
  t.match(readFileSync(path.join(s.dir, 'late1.leases'), 'utf8'), /fixed-address 198\.18\.0\.100;/, 'pool address while unknown');
  t.match(curl(late.ns, '-f', `${HEAD}/boot/52-54-00-00-00-99.ipxe`).stdout, /is not a node of lab\.test yet/);
  const add = cli('nodes', 'add', 'n020', '--mac', LATE, '--ip', '198.18.0.20');
  t.equal(add.code, 0, add.stderr);
  t.match(add.stdout, /added n020: 198\.18\.0\.20/);
  t.match(curl(late.ns, '-f', `${HEAD}/boot/52-54-00-00-00-99.ipxe`).stdout, /booting n020 \(198\.18\.0\.20/, 'its script at once');
  s.lab.exec(late.ns, 'ip', ['addr', 'flush', 'dev', 'eth0']);
  dhclient(late.ns, 'late2.leases');
  t.match(readFileSync(path.join(s.dir, 'late2.leases'), 'utf8'), /fixed-address 198\.18\.0\.20;/, 'and its DHCP reservation at once');

  const dup = cli('nodes', 'add', 'n021', '--mac', LATE, '--ip', '198.18.0.21');
  t.equal(dup.code, 1);
  t.match(dup.stderr, /^error: macs\[0\]: MAC 52:54:00:00:00:99 already belongs to node n020/, 'the CLI prints the API message naming the field');
  const list = cli('nodes', 'list');
  t.match(list.stdout, /^NAME\s+IP\s+MACS\s+PROFILE\s+LEASE\s+BOOT\n/);
  t.match(list.stdout, /n001\s+198\.18\.0\.11\s+52:54:00:00:00:01\s+default\s+bound\s+booted/);

  const access = readFileSync(path.join(s.dir, 'state', 'logs', 'api_access_log'), 'utf8');
  t.match(access, /^198\.18\.0\.11 - - \[[^\]]+\] "GET \/files\/images\/initrd\.img HTTP\/1\.1" 200 5243003 "-" "curl\/[\d.]+"$/m, 'the access log has the download');
});
