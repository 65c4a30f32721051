/**
 * Does HTTP work delay the UDP services? bootherd serves DHCP, DNS and HTTP
 * from one event loop (DNS with its default of one worker), so any HTTP request
 * that holds the loop delays every DNS and DHCP reply behind it. This runs a
 * real `bootherd serve` in lab namespaces and measures DNS reply latency from
 * one client (and DHCP DISCOVER->OFFER latency with perfdhcp) while another
 * client loads HTTP:
 *   idle         nothing else
 *   adversarial  K keep-alive connections each repeating a request with
 *                `Range: bytes=` + 16,200 spaces + `!` (the header finding 3 found)
 *   flood        K keep-alive connections repeating an ordinary ranged GET of a 1 MiB file
 *
 *   node --import tsx bench/http/stall.ts [--connections 4,16] [--samples 200]
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab } from '../../src/lab/netns.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/bootherd.mjs');
const HEAD_IP = '198.18.0.1';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
const connections = arg('connections', '4,16').split(',').map(Number);
const samples = Number(arg('samples', '200'));

/** DNS probe: one A query every 10 ms, each reply's round trip in ms, as JSON on stdout. */
const DNS_PROBE = `
const dgram = require('node:dgram');
const [server, count] = [process.argv[2], Number(process.argv[3])];
const labels = 'n001.cluster.lab'.split('.');
const name = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
const s = dgram.createSocket('udp4');
const out = []; const sent = new Map(); let id = 0;
s.on('message', (m) => { const i = m.readUInt16BE(0); const t = sent.get(i); if (t !== undefined) { out.push(Number(process.hrtime.bigint() - t) / 1e6); sent.delete(i); } });
function next() {
  if (id >= count) { setTimeout(() => { s.close(); console.log(JSON.stringify({ rtts: out, lost: count - out.length })); }, 3000); return; }
  const h = Buffer.alloc(12); h.writeUInt16BE(++id, 0); h.writeUInt16BE(0x0100, 2); h.writeUInt16BE(1, 4);
  sent.set(id, process.hrtime.bigint());
  s.send(Buffer.concat([h, name, Buffer.from([0, 1, 0, 1])]), 53, server);
  setTimeout(next, 10);
}
next();
`;

/** HTTP load: K keep-alive connections, each sending its next request when the last answer is in, until killed. */
const HTTP_LOAD = `
const http = require('node:http');
const [server, k, mode] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const agent = new http.Agent({ keepAlive: true, maxSockets: k });
const range = mode === 'adversarial' ? 'bytes=' + ' '.repeat(16200) + '!' : 'bytes=0-1048575';
let done = 0;
function one() {
  const req = http.get({ host: server, port: 80, path: '/files/initrd.img', agent, headers: { range } }, (res) => { res.resume(); res.on('end', () => { done++; one(); }); });
  req.on('error', () => setTimeout(one, 10));
}
for (let i = 0; i < k; i++) one();
process.on('SIGTERM', () => { console.log(JSON.stringify({ requests: done })); process.exit(0); });
`;

function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function collect(child: ChildProcess): Promise<string> {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  return new Promise((resolve) => child.once('exit', () => resolve(out)));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-bench-stall-'));
  const files = path.join(dir, 'files');
  mkdirSync(files);
  writeFileSync(path.join(files, 'initrd.img'), Buffer.alloc(1 << 20, 7));
  writeFileSync(path.join(dir, 'dns-probe.cjs'), DNS_PROBE);
  writeFileSync(path.join(dir, 'http-load.cjs'), HTTP_LOAD);
  const lab = Lab.create({ prefix: `bbstall${process.pid.toString(36)}`, clients: 2, clientCidr: (i) => `198.18.0.${50 + i}/24` });
  const cleanup = () => { lab.destroy(); rmSync(dir, { recursive: true, force: true }); };
  process.once('SIGINT', () => { cleanup(); process.exit(130); });
  try {
    const clusterFile = path.join(dir, 'cluster.yaml');
    writeFileSync(clusterFile, `
cluster: { domain: cluster.lab }
head: { address: ${HEAD_IP} }
state: ${path.join(dir, 'state')}
files: ${files}
log: { level: warn }
subnets: [{ network: 198.18.0.0/24, interface: ${lab.head.iface}, pool: 198.18.0.100-198.18.0.199 }]
nodes: [{ name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11 }]
tftp: { enabled: false }
ntp: { enabled: false }
http: { address: ${HEAD_IP}, port: 80, readOpenTo: any }
`);
    const server = lab.spawn(lab.head.ns, process.execPath, [BIN, 'serve', '--config', clusterFile]);
    await new Promise((r) => setTimeout(r, 4000));
    const [attacker, prober] = [lab.clients[0]!, lab.clients[1]!];
    const rows: string[][] = [['load', 'connections', 'DNS p50 ms', 'DNS p99 ms', 'DNS max ms', 'DNS lost', 'DHCP avg delay ms', 'DHCP max delay ms', 'HTTP requests']];
    const phases: Array<{ mode: string; k: number }> = [{ mode: 'idle', k: 0 }];
    for (const k of connections) phases.push({ mode: 'adversarial', k }, { mode: 'flood', k });
    for (const { mode, k } of phases) {
      process.stderr.write(`phase: ${mode} ${k}\n`);
      const load = k ? lab.spawn(attacker.ns, process.execPath, [path.join(dir, 'http-load.cjs'), HEAD_IP, String(k), mode]) : undefined;
      const loadOut = load ? collect(load) : Promise.resolve('{"requests":0}');
      await new Promise((r) => setTimeout(r, 1000));
      const dnsOut = await collect(lab.spawn(prober.ns, process.execPath, [path.join(dir, 'dns-probe.cjs'), HEAD_IP, String(samples)]));
      let dns: { rtts: number[]; lost: number };
      try { dns = JSON.parse(dnsOut) as typeof dns; } catch { throw new Error(`the DNS probe failed:\n${dnsOut}`); }
      // perfdhcp: 10 DISCOVERs a second for 5 s, exchange 1 only (DISCOVER->OFFER, nothing leased).
      const dhcp = await collect(lab.spawn(prober.ns, 'perfdhcp', ['-4', '-l', prober.iface, '-r', '10', '-p', '5', '-i', '-R', '1000', HEAD_IP]));
      const delay = /min\/avg\/max delay: ([\d.]+)\/([\d.]+)\/([\d.]+)\/|avg delay: ([\d.]+) ms[\s\S]*?max delay: ([\d.]+) ms/.exec(dhcp);
      load?.kill('SIGTERM');
      const requests = (JSON.parse((await loadOut).trim().split('\n').pop() || '{}') as { requests?: number }).requests ?? 0;
      rows.push([mode, String(k), percentile(dns.rtts, 50).toFixed(2), percentile(dns.rtts, 99).toFixed(2), Math.max(...dns.rtts).toFixed(2), String(dns.lost),
        delay ? (delay[2] ?? delay[4])! : '?', delay ? (delay[3] ?? delay[5])! : '?', String(requests)]);
      if (!delay) process.stderr.write(`perfdhcp said:\n${dhcp}\n`);
    }
    server.kill('SIGTERM');
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) console.log(`| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`);
  } finally {
    cleanup();
  }
}

await main();
