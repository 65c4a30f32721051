/**
 * Records the TFTP codec vectors in this folder from real programs: the
 * tftp-hpa, atftp and curl clients talking to tftpd-hpa (in.tftpd) and
 * dnsmasq inside lab namespaces, captured with tcpdump on the head's link.
 * Each vector is one UDP payload as hex, with comment lines naming the
 * programs that produced it.
 *
 *   node --import tsx test/vectors/tftp/record.ts
 *
 * Needs root (namespaces) and the Debian packages in scripts/apt-packages.txt.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../../src/lab/netns.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVER = '198.18.0.1';

function version(cmd: string, args: string[], pick: RegExp): string {
  try {
    const out = execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return pick.exec(out)?.[0] ?? cmd;
  } catch (e) {
    const out = String((e as { stdout?: string }).stdout ?? '') + String((e as { stderr?: string }).stderr ?? '');
    return pick.exec(out)?.[0] ?? cmd;
  }
}

interface Packet { readonly srcPort: number; readonly dstPort: number; readonly fromServer: boolean; readonly payload: Buffer }

/** Minimal pcap reader: Ethernet, IPv4, UDP; unfragmented packets only. */
function readPcap(file: string): Packet[] {
  const buf = readFileSync(file);
  const le = buf.readUInt32LE(0) === 0xa1b2c3d4 || buf.readUInt32LE(0) === 0xa1b23c4d;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const out: Packet[] = [];
  for (let o = 24; o + 16 <= buf.length;) {
    const len = u32(o + 8);
    const frame = buf.subarray(o + 16, o + 16 + len);
    o += 16 + len;
    if (frame.readUInt16BE(12) !== 0x0800) continue;
    const ip = frame.subarray(14);
    if (ip[9] !== 17 || (ip.readUInt16BE(6) & 0x3fff) !== 0) continue;
    const udp = ip.subarray((ip[0]! & 15) * 4);
    const src = `${ip[12]}.${ip[13]}.${ip[14]}.${ip[15]}`;
    out.push({ srcPort: udp.readUInt16BE(0), dstPort: udp.readUInt16BE(2), fromServer: src === SERVER, payload: Buffer.from(udp.subarray(8, udp.readUInt16BE(4))) });
  }
  return out;
}

/** Splits a capture into conversations: each starts with a request to port 69 from a new client port. */
function conversations(packets: Packet[]): Packet[][] {
  const convs: Array<{ port: number; packets: Packet[] }> = [];
  for (const p of packets) {
    const clientPort = p.fromServer ? p.dstPort : p.srcPort;
    let conv = convs.find((c) => c.port === clientPort);
    if (!conv && !p.fromServer && p.dstPort === 69) { conv = { port: clientPort, packets: [] }; convs.push(conv); }
    conv?.packets.push(p);
  }
  return convs.map((c) => c.packets);
}

function write(name: string, producedBy: string, payload: Buffer): void {
  const hex = payload.toString('hex').match(/.{1,64}/g)!.join('\n');
  writeFileSync(path.join(HERE, `${name}.hex`), `# ${producedBy}\n# recorded by test/vectors/tftp/record.ts with ${TCPDUMP} in a lab namespace\n${hex}\n`);
  process.stdout.write(`${name}.hex: ${payload.length} bytes\n`);
}

const TCPDUMP = version('tcpdump', ['--version'], /tcpdump version [\d.]+/);
const TFTPD = `in.tftpd (${version('in.tftpd', ['-V'], /tftp-hpa [\d.]+/)})`;
const DNSMASQ = version('dnsmasq', ['--version'], /Dnsmasq version [\d.]+/);
const TFTP_HPA = `tftp (${version('in.tftpd', ['-V'], /tftp-hpa [\d.]+/)})`;
const ATFTP = version('atftp', ['-V'], /atftp-[\d.]+/);
const CURL = version('curl', ['--version'], /curl [\d.]+/);

async function capture(lab: Lab, server: () => ChildProcess, clients: () => void): Promise<Packet[][]> {
  const pcap = path.join(dir, `capture-${Date.now()}.pcap`);
  const dump = lab.spawn(lab.head.ns, 'tcpdump', ['-i', 'eth0', '-U', '-n', '-w', pcap, 'udp']);
  await new Promise<void>((resolve) => dump.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('listening on')) resolve(); }));
  const srv = server();
  await new Promise((r) => setTimeout(r, 500));
  clients();
  await new Promise((r) => setTimeout(r, 500));
  srv.kill('SIGTERM');
  const done = new Promise((r) => dump.once('exit', r));
  dump.kill('SIGINT');
  await done;
  return conversations(readPcap(pcap));
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-tftp-vectors-'));
const root = path.join(dir, 'root');
execFileSync('mkdir', ['-p', root]);
// Deterministic content, so re-recording gives the same DATA vectors.
writeFileSync(path.join(root, 'small.bin'), Buffer.from(Array.from({ length: 1300 }, (_, i) => (i * 7 + 3) % 251)));
writeFileSync(path.join(root, 'hello.txt'), 'line one\nline two\r\nend\n');

const lab = Lab.create({ prefix: `btvec${process.pid.toString(36)}`, clients: 1, clientCidr: () => '198.18.0.2/24' });
const client = lab.clients[0]!.ns;
const run = (cmd: string, args: string[]) => lab.run(client, cmd, args, 20_000);
try {
  const hpa = await capture(lab, () => lab.spawn(lab.head.ns, 'in.tftpd', ['-L', '-s', root, '-a', `${SERVER}:69`]), () => {
    run('tftp', ['-m', 'binary', SERVER, '-c', 'get', 'small.bin', path.join(dir, 'out1')]);
    run('tftp', ['-m', 'ascii', SERVER, '-c', 'get', 'hello.txt', path.join(dir, 'out2')]);
    run('atftp', ['--option', 'blksize 1432', '--option', 'tsize 0', '--option', 'windowsize 4', '-g', '-r', 'small.bin', '-l', path.join(dir, 'out3'), SERVER]);
    run('curl', ['-s', '-o', path.join(dir, 'out4'), '--tftp-blksize', '1024', `tftp://${SERVER}/small.bin`]);
    run('curl', ['-s', '-o', path.join(dir, 'out5'), `tftp://${SERVER}/missing.bin`]);
    run('tftp', [SERVER, '-c', 'put', path.join(root, 'hello.txt'), 'upload.txt']);
  });
  const [octet, ascii, atftp, curl, missing, put] = hpa as [Packet[], Packet[], Packet[], Packet[], Packet[], Packet[]];
  const by = (c: string, s: string) => `${c} -> ${s}`;
  write('rrq-tftp-hpa-octet', `request from ${by(TFTP_HPA, TFTPD)}: get small.bin, binary mode, no options`, octet[0]!.payload);
  write('data-tftpd-hpa-block1', `first DATA (512 bytes) from ${TFTPD} to ${TFTP_HPA}`, octet.find((p) => p.fromServer)!.payload);
  write('ack-tftp-hpa-block1', `ACK of block 1 from ${TFTP_HPA} to ${TFTPD}`, octet.filter((p) => !p.fromServer)[1]!.payload);
  write('data-tftpd-hpa-last', `last, short DATA (block 3, 276 bytes) from ${TFTPD} to ${TFTP_HPA}`, octet.filter((p) => p.fromServer).at(-1)!.payload);
  write('rrq-tftp-hpa-netascii', `request from ${by(TFTP_HPA, TFTPD)}: get hello.txt, ascii (netascii) mode`, ascii[0]!.payload);
  write('data-tftpd-hpa-netascii', `netascii DATA of "line one\\nline two\\r\\nend\\n" from ${TFTPD}`, ascii.find((p) => p.fromServer)!.payload);
  write('rrq-atftp-options', `request from ${by(ATFTP, TFTPD)} with --option blksize 1432, tsize 0, windowsize 4`, atftp[0]!.payload);
  write('oack-tftpd-hpa', `OACK from ${TFTPD} to ${ATFTP} (blksize and tsize accepted, windowsize ignored)`, atftp.find((p) => p.fromServer)!.payload);
  write('ack-atftp-block0', `ACK of the OACK (block 0) from ${ATFTP}`, atftp.filter((p) => !p.fromServer)[1]!.payload);
  write('rrq-curl', `request from ${by(CURL, TFTPD)} with --tftp-blksize 1024`, curl[0]!.payload);
  write('oack-tftpd-hpa-curl', `OACK from ${TFTPD} to ${CURL}`, curl.find((p) => p.fromServer)!.payload);
  write('error-tftpd-hpa-not-found', `ERROR from ${TFTPD} to ${CURL} for a missing file`, missing.find((p) => p.fromServer)!.payload);
  write('wrq-tftp-hpa', `write request from ${by(TFTP_HPA, TFTPD)}: put upload.txt`, put[0]!.payload);
  write('error-tftpd-hpa-write', `ERROR from ${TFTPD} refusing a write request (without -c it answers File not found)`, put.find((p) => p.fromServer)!.payload);

  const dm = await capture(lab, () => lab.spawn(lab.head.ns, 'dnsmasq', ['--keep-in-foreground', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--enable-tftp', `--tftp-root=${root}`, `--listen-address=${SERVER}`, '--bind-interfaces', '--user=root', '--pid-file=']), () => {
    run('atftp', ['--option', 'blksize 1432', '--option', 'tsize 0', '--option', 'windowsize 4', '-g', '-r', 'small.bin', '-l', path.join(dir, 'out6'), SERVER]);
  });
  write('oack-dnsmasq', `OACK from ${DNSMASQ} to ${ATFTP} (blksize 1432, tsize 0, windowsize 4 requested)`, dm[0]!.find((p) => p.fromServer)!.payload);
} finally {
  lab.destroy();
  rmSync(dir, { recursive: true, force: true });
}
