/**
 * Records real DNS packets as codec test vectors: queries from dig (BIND
 * 9.18), kdig (Knot 3.2) and dnsperf 2.10, and responses from NSD 4.6 and
 * dnsmasq 2.90, captured with tcpdump on a lab link. Each vector is one hex
 * file in test/vectors/dns/ whose first line says which tool produced it.
 * Run as root:
 *   node --import tsx scripts/record-dns-vectors.ts
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../src/lab/netns.ts';
import { readPcapUdp } from '../test/helpers/pcap.ts';
import { writeNsdConfig } from '../bench/lib/reference-servers.ts';

const OUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/vectors/dns');
const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-dns-vectors-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HEAD = '198.18.0.1';

function nsdConfig(): string {
  writeFileSync(path.join(dir, 'vec.test.zone'), `$ORIGIN vec.test.
$TTL 300
@ IN SOA head.vec.test. hostmaster.vec.test. 7 3600 600 86400 60
@ IN NS head.vec.test.
head IN A ${HEAD}
n001 IN A 198.18.0.11
n002 IN A 198.18.0.12
_slurmctld._tcp IN SRV 10 0 6817 head.vec.test.
_slurmctld._tcp IN SRV 20 0 6817 n002.vec.test.
www IN CNAME n001.vec.test.
`);
  const conf = writeNsdConfig({ dir, address: HEAD, zones: ['vec.test'] });
  return conf;
}

function waitExit(p: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { p.kill('SIGKILL'); resolve(); }, ms);
    p.once('exit', () => { clearTimeout(t); resolve(); });
  });
}

const lab = Lab.create({ prefix: 'bhdnsrec', clients: 1, clientCidr: () => '198.18.0.2/24' });
const client = lab.clients[0]!;

/** Runs `cmd` in the client namespace under tcpdump; writes its first query and first response as vectors. */
async function capture(cmd: string[], query: { name: string; source: string } | undefined, response: { name: string; source: string } | undefined): Promise<void> {
  const pcap = path.join(dir, `${query?.name ?? response!.name}.pcap`);
  const dump = lab.spawn(client.ns, 'tcpdump', ['-i', 'eth0', '-U', '-s', '0', '-w', pcap, 'udp port 53 or udp port 5353']);
  await sleep(800);
  try {
    lab.run(client.ns, cmd[0]!, cmd.slice(1), 20_000);
  } finally {
    await sleep(400);
    dump.kill('SIGINT');
    await waitExit(dump, 5000);
  }
  const packets = readPcapUdp(pcap);
  const q = packets.find((p) => p.src === client.address);
  const r = packets.find((p) => p.dst === client.address);
  for (const [want, got] of [[query, q], [response, r]] as const) {
    if (!want) continue;
    if (!got) throw new Error(`no packet captured for ${want.name}`);
    const hex = got.payload.toString('hex').replace(/(.{64})/g, '$1\n').trim();
    writeFileSync(path.join(OUT, `${want.name}.hex`), `# ${want.source}\n${hex}\n`);
    process.stdout.write(`${want.name}: ${got.payload.length} bytes\n`);
  }
}

try {
  mkdirSync(OUT, { recursive: true });
  const nsd = lab.spawn(lab.head.ns, 'nsd', ['-d', '-c', nsdConfig()]);
  const dnsmasq = lab.spawn(lab.head.ns, 'dnsmasq', ['--no-daemon', '--no-resolv', '--no-hosts', '--port=5353', `--listen-address=${HEAD}`, '--bind-interfaces',
    '--host-record=n001.vec.test,198.18.0.11', '--srv-host=_slurmctld._tcp.vec.test,head.vec.test,6817,10,0', `--host-record=head.vec.test,${HEAD}`]);
  await sleep(1500);
  writeFileSync(path.join(dir, 'dnsperf.txt'), 'N001.Vec.Test A\n');

  await capture(['dig', `@${HEAD}`, 'n001.vec.test', 'A'],
    { name: 'dig-a-query', source: 'dig 9.18.49 (Debian 12), default options: A query with EDNS and a cookie' },
    { name: 'nsd-a-response', source: 'NSD 4.6.1 (Debian 12): A answer to dig' });
  await capture(['dig', '+noedns', `@${HEAD}`, 'nope.vec.test', 'A'],
    { name: 'dig-noedns-query', source: 'dig 9.18.49 (Debian 12) +noedns: plain A query' },
    { name: 'nsd-nxdomain-response', source: 'NSD 4.6.1 (Debian 12): NXDOMAIN with the SOA in the authority section' });
  await capture(['kdig', `@${HEAD}`, '_slurmctld._tcp.vec.test', 'SRV'],
    { name: 'kdig-srv-query', source: 'kdig 3.2.6 (Debian 12), default options: SRV query' },
    { name: 'nsd-srv-response', source: 'NSD 4.6.1 (Debian 12): two SRV records and their targets\' addresses' });
  await capture(['dig', '-x', '198.18.0.11', `@${HEAD}`],
    { name: 'dig-ptr-query', source: 'dig 9.18.49 (Debian 12) -x 198.18.0.11: PTR query' }, undefined);
  await capture(['dnsperf', '-s', HEAD, '-d', path.join(dir, 'dnsperf.txt'), '-n', '1'],
    { name: 'dnsperf-a-query', source: 'dnsperf 2.10.0 (Debian 12): A query for N001.Vec.Test (mixed case), no EDNS' }, undefined);
  await capture(['dig', '-p', '5353', `@${HEAD}`, '_slurmctld._tcp.vec.test', 'SRV'], undefined,
    { name: 'dnsmasq-srv-response', source: 'dnsmasq 2.90 (Debian 12): SRV answer with compressed names, to dig' });
  nsd.kill('SIGTERM');
  dnsmasq.kill('SIGTERM');
  await Promise.all([waitExit(nsd, 3000), waitExit(dnsmasq, 3000)]);
} finally {
  lab.destroy();
}
