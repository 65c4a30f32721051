/**
 * Real TFTP clients (tftp-hpa's tftp, atftp, curl) against a real bootherd,
 * each client in its own network namespace on a lab bridge: every kind of
 * file (iPXE loader, TFTP root, boot file root, rendered pxelinux.cfg), with
 * and without options, netascii, block number rollover on a 40 MiB file,
 * refusals, and transfers that complete through 10% packet loss.
 *
 * Loss is made with iptables' `statistic` match inside the client namespace
 * (random drops of incoming and outgoing UDP): this machine's kernel has no
 * sch_netem, so `tc netem` is not available.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LOADERS_DIR } from '../../src/config/schema.ts';
import { startLabServer, type LabServer } from '../helpers/lab-server.ts';

const HEAD = '198.18.0.1';
const NODE_MAC = '52:54:00:00:00:01';

const files = mkdtempSync(path.join(os.tmpdir(), 'bootherd-tftp-lab-'));
t.teardown(() => rmSync(files, { recursive: true, force: true }));
const root = path.join(files, 'root');
const boot = path.join(files, 'boot');
mkdirSync(path.join(root, 'images'), { recursive: true });
mkdirSync(boot);
writeFileSync(path.join(root, 'images', 'mid.bin'), randomBytes(3 << 20));
writeFileSync(path.join(root, 'motd.txt'), 'first line\nsecond line\r\nthird\n');
writeFileSync(path.join(boot, 'vmlinuz'), randomBytes(700_000));

const config = (state: string) => `
cluster: { domain: lab.test }
head: { name: head, address: ${HEAD} }
state: ${state}
files: ${boot}
log: { level: info }
subnets:
  - { network: 198.18.0.0/24, interface: eth0 }
tftp: { root: ${root}, maxBlockSize: 1468, maxWindowSize: 64 }
dhcp: { enabled: false }
profiles:
  compute: { kernel: vmlinuz, initrd: initrd.img, cmdline: console=ttyS0 }
nodes:
  - { name: n001, macs: [${NODE_MAC}], ip: 198.18.0.11, profile: compute }
`;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const shaOf = (file: string) => sha(readFileSync(file));

interface Fetcher {
  readonly name: string;
  /** Command and arguments that fetch `remote` into `local`, with or without options. */
  argv(remote: string, local: string, withOptions: boolean): [string, string[]];
}

const CLIENTS: readonly Fetcher[] = [
  // tftp-hpa's client speaks no options at all: plain RFC 1350, 512-byte lockstep.
  { name: 'tftp-hpa', argv: (r, l) => ['tftp', ['-m', 'binary', HEAD, '-c', 'get', r, l]] },
  {
    name: 'atftp',
    argv: (r, l, o) => ['atftp', [...(o ? ['--option', 'blksize 1432', '--option', 'tsize 0', '--option', 'windowsize 16'] : []), '-g', '-r', r, '-l', l, HEAD]],
  },
  { name: 'curl', argv: (r, l, o) => ['curl', ['-sS', '-o', l, ...(o ? ['--tftp-blksize', '1468'] : ['--tftp-no-options']), `tftp://${HEAD}/${r}`]] },
];

function fetchAs(s: LabServer, ns: string, client: Fetcher, remote: string, withOptions: boolean, timeoutMs = 60_000): { local: string; code: number | null; out: string } {
  const local = path.join(s.dir, `${client.name}-${withOptions ? 'opt' : 'plain'}-${remote.replace(/\W/g, '_')}-${Math.random().toString(36).slice(2)}`);
  const [cmd, args] = client.argv(remote, local, withOptions);
  const r = s.lab.run(ns, cmd, args, timeoutMs);
  return { local, code: r.code, out: r.stdout + r.stderr };
}

t.test('every client fetches every kind of file, with and without options', async (t) => {
  const s = await startLabServer(t, { tag: 'tf', clients: 1, clientMac: () => NODE_MAC, clientCidr: () => '198.18.0.11/24', config });
  const ns = s.lab.clients[0]!.ns;
  const expected: Record<string, string> = {
    'undionly.kpxe': shaOf(path.join(LOADERS_DIR, 'undionly.kpxe')),
    'ipxe.efi': shaOf(path.join(LOADERS_DIR, 'ipxe.efi')),
    'images/mid.bin': shaOf(path.join(root, 'images', 'mid.bin')),
    vmlinuz: shaOf(path.join(boot, 'vmlinuz')),
  };
  for (const client of CLIENTS) {
    for (const withOptions of [false, true]) {
      for (const [remote, hash] of Object.entries(expected)) {
        const r = fetchAs(s, ns, client, remote, withOptions);
        t.equal(r.code, 0, `${client.name} ${withOptions ? 'with' : 'without'} options: ${remote} fetched${r.code ? `\n${r.out}` : ''}`);
        t.equal(r.code === 0 ? shaOf(r.local) : '', hash, `${client.name} ${withOptions ? 'with' : 'without'} options: ${remote} sha256 matches`);
      }
    }
    const px = fetchAs(s, ns, client, `pxelinux.cfg/01-${NODE_MAC.replace(/:/g, '-')}`, true);
    t.match(px.code === 0 ? readFileSync(px.local, 'utf8') : px.out, /LABEL n001\n  KERNEL http:\/\/198\.18\.0\.1\/files\/vmlinuz\n  INITRD http:\/\/198\.18\.0\.1\/files\/initrd\.img\n  APPEND console=ttyS0\n/, `${client.name}: pxelinux.cfg rendered from the node's profile`);
  }
  // netascii: the server converts line ends to CR LF on the wire, tftp-hpa converts them back.
  const text = s.lab.run(ns, 'tftp', ['-m', 'ascii', HEAD, '-c', 'get', 'motd.txt', path.join(s.dir, 'motd.txt')]);
  t.equal(text.code, 0);
  t.equal(readFileSync(path.join(s.dir, 'motd.txt'), 'utf8'), 'first line\nsecond line\r\nthird\n', 'netascii round trip with tftp-hpa');

  // The loader fetch by n001's address went into its boot timeline.
  const journal = readdirSync(path.join(s.dir, 'state')).find((f) => f.startsWith('journal-'));
  t.match(journal ? readFileSync(path.join(s.dir, 'state', journal), 'utf8') : '', /"stage":"tftp-loader","at":\d+,"detail":"undionly\.kpxe"/, 'boot timeline: tftp-loader recorded for n001');
});

t.test('a 40 MiB file at blksize 512 rolls the block number over', async (t) => {
  const big = path.join(root, 'rollover.bin');
  writeFileSync(big, randomBytes(40 << 20));
  t.teardown(() => rmSync(big, { force: true }));
  const s = await startLabServer(t, { tag: 'tr', clients: 1, clientCidr: () => '198.18.0.2/24', config });
  const ns = s.lab.clients[0]!.ns;
  // 81,921 blocks of 512 bytes: past 65,535, block numbers wrap to 0.
  const hpa = fetchAs(s, ns, CLIENTS[0]!, 'rollover.bin', false, 240_000);
  t.equal(hpa.code, 0, `tftp-hpa fetched it${hpa.code ? `\n${hpa.out}` : ''}`);
  t.equal(hpa.code === 0 ? shaOf(hpa.local) : '', shaOf(big), 'tftp-hpa: sha256 matches after rollover');
  rmSync(hpa.local, { force: true });
  const curl = s.lab.run(ns, 'curl', ['-sS', '-o', path.join(s.dir, 'curl-rollover'), '--tftp-blksize', '512', `tftp://${HEAD}/rollover.bin`], 240_000);
  t.equal(curl.code, 0, `curl --tftp-blksize 512 fetched it${curl.code ? `\n${curl.stderr}` : ''}`);
  t.equal(curl.code === 0 ? shaOf(path.join(s.dir, 'curl-rollover')) : '', shaOf(big), 'curl (blksize option, OACK): sha256 matches after rollover');
  rmSync(path.join(s.dir, 'curl-rollover'), { force: true });
});

t.test('transfers complete through 10% packet loss', async (t) => {
  const s = await startLabServer(t, { tag: 'tl', clients: 1, clientCidr: () => '198.18.0.2/24', config });
  const ns = s.lab.clients[0]!.ns;
  // Dropped on arrival at either end: a DROP in OUTPUT would fail the sender's sendto (EPERM) instead of losing the packet.
  const drop = ['-p', 'udp', '-m', 'statistic', '--mode', 'random', '--probability', '0.1', '-j', 'DROP'];
  s.lab.exec(ns, 'iptables', ['-A', 'INPUT', ...drop]);
  s.lab.exec(s.lab.head.ns, 'iptables', ['-A', 'INPUT', '-s', s.lab.clients[0]!.address!, ...drop]);
  // atftp ignores duplicate blocks in window mode, so when the ACK that ends a window is lost only its own
  // timer (5 s by default) recovers; a shorter one keeps this test short.
  const atftp: Fetcher = { name: 'atftp', argv: (r, l, o) => { const [cmd, args] = CLIENTS[1]!.argv(r, l, o); return [cmd, ['--tftp-timeout', '1', ...args]]; } };
  // Without a time limit curl repeats a lost ACK only every 72 s (its interval is the limit / 50, an hour
  // when none is set); with one, every few seconds, as PXE firmware and iPXE do. The server's side of a lost
  // ACK 0 (the OACK timer) is the unit test's.
  const curl: Fetcher = { name: 'curl', argv: (r, l, o) => { const [cmd, args] = CLIENTS[2]!.argv(r, l, o); return [cmd, ['--max-time', '110', ...args]]; } };
  const cases: Array<[Fetcher, string, boolean]> = [
    [CLIENTS[0]!, 'undionly.kpxe', false],
    [atftp, 'images/mid.bin', true],
    [curl, 'ipxe.efi', true],
  ];
  for (const [client, remote, withOptions] of cases) {
    const r = fetchAs(s, ns, client, remote, withOptions, 120_000);
    const want = shaOf(remote.includes('/') ? path.join(root, remote) : path.join(LOADERS_DIR, remote));
    t.equal(r.code, 0, `${client.name}: ${remote} fetched through loss${r.code ? `\n${r.out.slice(-2000)}` : ''}`);
    t.equal(r.code === 0 ? shaOf(r.local) : '', want, `${client.name}: ${remote} sha256 matches`);
  }
  const counts = [ns, s.lab.head.ns].map((n) => Number(/^\s*(\d+)\s+\d+\s+DROP/m.exec(s.lab.exec(n, 'iptables', ['-L', 'INPUT', '-v', '-n', '-x']))?.[1] ?? 0));
  t.ok(counts.every((n) => n > 0), `packets were really dropped both ways (to the client ${counts[0]}, to the server ${counts[1]})`);
});

t.test('a lost ACK 0: the OACK goes out again to a client that declared its timeout (curl, no time limit)', async (t) => {
  const s = await startLabServer(t, { tag: 'ta', clients: 1, clientCidr: () => '198.18.0.2/24', config });
  const ns = s.lab.clients[0]!.ns;
  // The head loses the first ACK 0 it is sent (u32: the first 4 bytes of the UDP payload are opcode 4, block 0).
  s.lab.exec(s.lab.head.ns, 'iptables', ['-A', 'INPUT', '-p', 'udp', '-m', 'u32', '--u32', '0>>22&0x3C@8=0x00040000',
    '-m', 'statistic', '--mode', 'nth', '--every', '1000000', '--packet', '0', '-j', 'DROP']);
  // curl declares a 6 s timeout but repeats its ACK 0 only after 72 s; the test's limit sits between the two.
  const r = fetchAs(s, ns, CLIENTS[2]!, 'ipxe.efi', true, 50_000);
  t.equal(r.code, 0, `curl: ipxe.efi fetched after its ACK 0 was lost${r.code ? `\n${r.out.slice(-2000)}` : ''}`);
  t.equal(r.code === 0 ? shaOf(r.local) : '', shaOf(path.join(LOADERS_DIR, 'ipxe.efi')), 'curl: sha256 matches');
  const dropped = Number(/^\s*(\d+)\s+\d+\s+DROP/m.exec(s.lab.exec(s.lab.head.ns, 'iptables', ['-L', 'INPUT', '-v', '-n', '-x']))?.[1] ?? 0);
  t.equal(dropped, 1, 'the ACK 0 was really lost');
  const metrics = s.lab.run(ns, 'curl', ['-sS', `http://${HEAD}/metrics`]).stdout;
  t.match(metrics, /^bootherd_tftp_transfers_total\{outcome="complete"\} 1$/m, 'one transfer, complete');
  t.notMatch(metrics, /^bootherd_tftp_transfers_total\{outcome="timeout"\} [1-9]/m, 'none given up');
});

t.test('refusals reach real clients as TFTP errors', async (t) => {
  const s = await startLabServer(t, { tag: 'tv', clients: 1, clientCidr: () => '198.18.0.2/24', config });
  const ns = s.lab.clients[0]!.ns;
  const hpa = (cmd: string) => s.lab.run(ns, 'tftp', [HEAD, '-c', ...cmd.split(' ')]).stdout;
  t.match(hpa(`get ../../etc/passwd ${path.join(s.dir, 'x1')}`), /Error code 2: access violation/, 'tftp-hpa: .. refused');
  t.match(hpa(`get /etc/passwd ${path.join(s.dir, 'x2')}`), /Error code 2: access violation/, 'tftp-hpa: absolute path refused');
  t.match(hpa(`get images/../../boot/vmlinuz ${path.join(s.dir, 'x3')}`), /Error code 2: access violation/, 'tftp-hpa: .. in the middle refused');
  t.match(hpa(`get nothing.bin ${path.join(s.dir, 'x4')}`), /Error code 1: file not found/, 'tftp-hpa: missing file');
  t.match(hpa(`put ${path.join(root, 'motd.txt')} motd.txt`), /Error code 2: this server is read-only/, 'tftp-hpa: write refused');
  const atftp = s.lab.run(ns, 'atftp', ['-g', '-r', '../../../etc/shadow', '-l', path.join(s.dir, 'x5'), HEAD]);
  t.match(atftp.stderr, /access violation/, 'atftp: .. refused');
  // curl exit 69: "TFTP: access violation"; 68: "TFTP: file not found".
  t.equal(s.lab.run(ns, 'curl', ['-sS', '-o', path.join(s.dir, 'x6'), `tftp://${HEAD}//etc/passwd`]).code, 69, 'curl: absolute path refused');
  t.equal(s.lab.run(ns, 'curl', ['-sS', '-o', path.join(s.dir, 'x7'), `tftp://${HEAD}/nothing.bin`]).code, 68, 'curl: missing file');
});
