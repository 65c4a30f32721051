/**
 * The TFTP service on loopback, in process, with crafted datagrams for what
 * real clients cannot send: every traversal trick, 20,000 random and
 * truncated datagrams, a client that vanishes, one that falls silent, a
 * repeated request, the queue under the transfer cap, the boot timeline, and
 * what each transfer socket must keep apart: a stranger's packet (an
 * unknown transfer ID) and two transfers from one address.
 * (Real clients in namespaces: test/lab/tftp-clients.test.ts.)
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeAck, encodeRequest, ErrorCode, Op } from '../../protocols/tftp/codec.ts';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { Server } from '../../src/server.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { RawTftpClient } from '../helpers/tftp-client.ts';
import { missingTools } from '../helpers/tools.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-tftp-service-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const root = path.join(dir, 'root');
mkdirSync(path.join(root, 'sub'), { recursive: true });
mkdirSync(path.join(dir, 'files'));
const big = randomBytes(300_000);
writeFileSync(path.join(root, 'big.bin'), big);
writeFileSync(path.join(root, 'sub', 'small.txt'), 'small\n');
writeFileSync(path.join(dir, 'secret'), 'secret');
symlinkSync(path.join(dir, 'secret'), path.join(root, 'escape'));

interface Teardownable { teardown(fn: () => unknown): void }

async function startServer(t: Teardownable, tftp: string): Promise<Server> {
  const config = parseConfig(`
head: { address: 127.0.0.2 }  # not the node's: a node may not have a head's address
state: ${path.join(dir, 'state')}
files: ${path.join(dir, 'files')}
log: { level: silent }
subnets: [ { network: 127.0.0.0/8 } ]
dhcp: { enabled: false }
dns: { enabled: false }
ntp: { enabled: false }
http: { enabled: false }
tftp: { address: 127.0.0.1, port: 0, root: ${root}, ${tftp} }
nodes: [ { name: n001, macs: [52:54:00:00:00:01], ip: 127.0.0.1 } ]
`, path.join(dir, 'cluster.yaml'));
  const server = new Server(config, { store: new MemoryStore(), log: silentLogger });
  await server.start();
  t.teardown(() => server.stop());
  return server;
}

async function client(t: Teardownable, server: Server): Promise<RawTftpClient> {
  const c = await RawTftpClient.open('127.0.0.1', server.tftp!.port);
  t.teardown(() => c.close());
  return c;
}

/** Waits until `cond` holds, polling; fails after `timeoutMs`. */
async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// setup.sh copies the iPXE loaders from Debian's ipxe package; `setup.sh --no-apt` without that package does not.
const ipxe = existsSync(fileURLToPath(new URL('../../boot-assets/ipxe/undionly.kpxe', import.meta.url)));
const noIpxe = ipxe ? false : 'SKIPPED: no boot-assets/ipxe (Debian\'s ipxe is not installed; sudo npm run setup copies them)';

t.test('serves files with and without options', async (t) => {
  const server = await startServer(t, 'retries: 2');
  const c = await client(t, server);
  const plain = await c.fetch('big.bin');
  t.equal(sha(plain.data), sha(big), 'no options: 512-byte lockstep');
  t.equal(plain.oack, undefined, 'and no OACK');
  const opt = await c.fetch('big.bin', { blksize: '1432', tsize: '0', windowsize: '1', frobnicate: 'yes' });
  t.equal(sha(opt.data), sha(big));
  t.same([...opt.oack!], [['blksize', '1432'], ['tsize', '300000'], ['windowsize', '1']], 'unknown options are left out of the OACK');
  t.equal((await c.fetch('sub/small.txt')).data.toString(), 'small\n');
  if (ipxe) t.equal((await c.fetch('undionly.kpxe')).data.length > 60_000, true, 'the iPXE loaders from boot-assets/ipxe');
  else t.pass('the iPXE loaders from boot-assets/ipxe', { skip: noIpxe });
  await until(() => server.metrics.value('bootherd_tftp_transfers_total', { outcome: 'complete' }) === (ipxe ? 4 : 3), 'every transfer completed');
});

t.test('escapes and bad requests are refused with the right error', async (t) => {
  const server = await startServer(t, 'retries: 2');
  const c = await client(t, server);
  const cases: Array<[string, Buffer, number, string]> = [
    ['..', encodeRequest({ op: Op.RRQ, filename: '../secret', mode: 'octet', options: new Map() }), ErrorCode.ACCESS_VIOLATION, 'name-parent'],
    ['.. deeper', encodeRequest({ op: Op.RRQ, filename: 'sub/../../secret', mode: 'octet', options: new Map() }), ErrorCode.ACCESS_VIOLATION, 'name-parent'],
    ['absolute', encodeRequest({ op: Op.RRQ, filename: '/etc/passwd', mode: 'octet', options: new Map() }), ErrorCode.ACCESS_VIOLATION, 'name-absolute'],
    ['backslash', encodeRequest({ op: Op.RRQ, filename: '..\\secret', mode: 'octet', options: new Map() }), ErrorCode.ACCESS_VIOLATION, 'name-backslash'],
    ['NUL', Buffer.from('\x00\x01big.bin\x00/../../secret\x00octet\x00', 'latin1'), ErrorCode.ACCESS_VIOLATION, 'name-nul'],
    ['symlink out', encodeRequest({ op: Op.RRQ, filename: 'escape', mode: 'octet', options: new Map() }), ErrorCode.ACCESS_VIOLATION, 'symlink-escape'],
    ['long name', encodeRequest({ op: Op.RRQ, filename: 'a/'.repeat(200) + 'x', mode: 'octet', options: new Map() }), ErrorCode.ACCESS_VIOLATION, 'name-too-long'],
    ['write', encodeRequest({ op: Op.WRQ, filename: 'big.bin', mode: 'octet', options: new Map() }), ErrorCode.ACCESS_VIOLATION, 'write-request'],
    ['missing', encodeRequest({ op: Op.RRQ, filename: 'nothing.bin', mode: 'octet', options: new Map() }), ErrorCode.FILE_NOT_FOUND, 'not-found'],
    ['mode', encodeRequest({ op: Op.RRQ, filename: 'big.bin', mode: 'mail', options: new Map() }), ErrorCode.ILLEGAL_OPERATION, 'mode'],
  ];
  for (const [what, bytes, code, reason] of cases) {
    const before = server.metrics.value('bootherd_tftp_refused_total', { reason });
    c.send(bytes);
    const { packet } = await c.recv();
    t.match(packet, { op: Op.ERROR, code }, `${what}: error ${code}`);
    t.equal(server.metrics.value('bootherd_tftp_refused_total', { reason }), before + 1, `${what}: counted as ${reason}`);
  }
  t.equal(server.metrics.value('bootherd_tftp_active_transfers'), 0);
});

t.test('random and truncated datagrams never crash the listener or a transfer', async (t) => {
  const server = await startServer(t, 'retries: 2');
  const c = await client(t, server);
  const junk = await client(t, server);
  let seed = 42;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
  const valid = [
    encodeRequest({ op: Op.RRQ, filename: 'sub/small.txt', mode: 'octet', options: new Map([['blksize', '1432'], ['tsize', '0']]) }),
    encodeAck(1),
    Buffer.from('\x00\x05\x00\x01File not found\x00', 'latin1'),
    Buffer.from('\x00\x06blksize\x001432\x00', 'latin1'),
  ];
  for (let i = 0; i < 20_000; i++) {
    let d: Buffer;
    switch (i % 4) {
      case 0: d = randomBytes(rand(600)); break;
      case 1: { const v = valid[rand(valid.length)]!; d = v.subarray(0, rand(v.length + 1)); break; }
      case 2: { d = randomBytes(2 + rand(100)); d[0] = 0; d[1] = 1 + rand(6); break; }
      default: { const v = Buffer.from(valid[rand(valid.length)]!); v[rand(v.length)] = rand(256); d = v; }
    }
    junk.send(d);
    // Paced so the listener's receive buffer never overflows: the point is decoding, not the kernel dropping.
    if (i % 100 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  // Junk into a running transfer's socket, from its own client.
  const first = await c.ask('big.bin');
  for (let i = 0; i < 200; i++) c.send(randomBytes(rand(40)), first.port);
  c.send(Buffer.from([0, 3, 0, 1, 9, 9]), first.port);
  // Then finish that transfer normally.
  c.send(encodeAck(1), first.port);
  let last = 1;
  for (;;) {
    const { packet, port } = await c.recv();
    if (packet.op !== Op.DATA) continue;
    c.send(encodeAck(packet.block), port);
    last = packet.block;
    if (packet.data.length < 512) break;
  }
  t.equal(last, Math.floor(big.length / 512) + 1, 'the transfer survived the junk');
  const dropped = server.metrics.render().split('\n').filter((l) => l.startsWith('bootherd_tftp_dropped_total'));
  t.ok(dropped.length >= 3, `drops are counted by reason:\n${dropped.join('\n')}`);
  const after = await client(t, server);
  t.equal(sha((await after.fetch('big.bin', { blksize: '1468' })).data), sha(big), 'the listener still serves');
});

t.test('a packet from an unknown transfer ID gets ERROR 5 and disturbs no transfer', async (t) => {
  const server = await startServer(t, 'retries: 2');
  const c = await client(t, server);
  const stranger = await client(t, server);
  const first = await c.ask('big.bin');
  t.match(first.packet, { op: Op.DATA, block: 1 });
  t.not(first.port, server.tftp!.port, 'the transfer is served from a port of its own');
  // Same address, another port: not the transfer's client. Its ACK of the block in flight must not advance the transfer.
  stranger.send(encodeAck(1), first.port);
  const answer = await stranger.recv();
  t.match(answer.packet, { op: Op.ERROR, code: ErrorCode.UNKNOWN_TRANSFER_ID, message: 'Unknown transfer ID' }, 'the stranger gets ERROR 5');
  t.equal(answer.port, first.port, 'from the transfer port');
  // An ERROR from a stranger is not answered (no ping-pong between two confused peers).
  stranger.send(Buffer.from('\x00\x05\x00\x05Unknown transfer ID\x00', 'latin1'), first.port);
  await t.rejects(stranger.recv(300), /no TFTP packet/, 'an ERROR from an unknown TID gets no answer');
  t.equal(server.metrics.value('bootherd_tftp_dropped_total', { reason: 'unknown-tid' }), 2, 'both counted');
  // The real client finishes its transfer as if nothing happened.
  c.send(encodeAck(1), first.port);
  const chunks = [(first.packet as { data: Buffer }).data];
  for (;;) {
    const { packet, port } = await c.recv();
    if (packet.op !== Op.DATA) { t.fail(`unexpected packet ${packet.op}`); break; }
    c.send(encodeAck(packet.block), port);
    if (packet.block === chunks.length + 1) chunks.push(packet.data);
    if (packet.data.length < 512) break;
  }
  t.equal(sha(Buffer.concat(chunks)), sha(big), 'the transfer completed with the right bytes');
  await until(() => server.metrics.value('bootherd_tftp_transfers_total', { outcome: 'complete' }) === 1, 'completion');
});

t.test('every transfer is served from a port of its own (a transfer ID nobody else can learn)', async (t) => {
  const server = await startServer(t, 'retries: 2');
  const clients = await Promise.all([1, 2, 3].map(() => client(t, server)));
  const ports = await Promise.all(clients.map(async (c) => (await c.ask('big.bin')).port));
  t.equal(new Set(ports).size, 3, `three transfers, three ports (${ports.join(', ')})`);
  t.notOk(ports.includes(server.tftp!.port), 'none of them the listening port');
});

t.test('two transfers from one address on different ports are kept apart', async (t) => {
  const server = await startServer(t, 'retries: 2');
  const a = await client(t, server);
  const b = await client(t, server);
  t.not(a.port, b.port);
  // Interleaved: both run at once, each from a socket of its own, with different block sizes.
  const [fromA, fromB] = await Promise.all([a.fetch('big.bin'), b.fetch('big.bin', { blksize: '1432' })]);
  t.equal(sha(fromA.data), sha(big), 'the first client got the file in 512-byte blocks');
  t.equal(sha(fromB.data), sha(big), 'the second got it in 1432-byte blocks');
  await until(() => server.metrics.value('bootherd_tftp_transfers_total', { outcome: 'complete' }) === 2, 'both completions');
  t.equal(server.metrics.value('bootherd_tftp_dropped_total', { reason: 'unknown-tid' }), 0, 'no packet was taken for a stranger\'s');
});

t.test('a client that goes away: the transfer ends at the next retransmission', async (t) => {
  const server = await startServer(t, 'retries: 5');
  const c = await client(t, server);
  c.request('big.bin');
  await c.recv();
  c.close();
  // Its port answers the next DATA with an ICMP port unreachable, which the transfer socket hears (IP_RECVERR).
  await until(() => server.metrics.value('bootherd_tftp_transfers_total', { outcome: 'client-gone' }) === 1, 'the transfer to end as client-gone');
  t.equal(server.metrics.value('bootherd_tftp_active_transfers'), 0, 'its slot is free');
});

t.test('a silent client gets an error packet, and the transfer is cleaned up', async (t) => {
  // timeout 1 s, retries 1: silence is tolerated for 1 + 2 = 3 s.
  const server = await startServer(t, 'timeout: 1, retries: 1');
  const c = await client(t, server);
  c.request('big.bin');
  const first = await c.recv();
  t.match(first.packet, { op: Op.DATA, block: 1 });
  c.send(encodeAck(1), first.port);
  const seen: number[] = [];
  for (;;) {
    const { packet } = await c.recv(10_000);
    if (packet.op === Op.ERROR) { t.match(packet, { code: ErrorCode.UNDEFINED, message: /timed out/ }); break; }
    if (packet.op === Op.DATA) seen.push(packet.block);
  }
  t.ok(seen.length >= 2 && seen.every((b) => b === 2), `DATA 2 was retransmitted before giving up (${seen.length} times)`);
  await until(() => server.metrics.value('bootherd_tftp_transfers_total', { outcome: 'timeout' }) === 1, 'the timeout to be counted');
  t.equal(server.metrics.value('bootherd_tftp_active_transfers'), 0);
});

t.test('a client that never acknowledged: DATA 1 resent, then the transfer ends without a word (the request may be forged)', async (t) => {
  const server = await startServer(t, 'timeout: 1, retries: 1');
  const c = await client(t, server);
  c.request('big.bin');
  const seen: Array<number | string> = [];
  // Given up after 3 s; nothing more may come.
  for (;;) {
    try {
      const { packet } = await c.recv(4000);
      seen.push(packet.op === Op.DATA ? packet.block : `op ${packet.op}`);
    } catch { break; }
  }
  // Sent at 0 and 1 s; the next (3 s) would meet the start bound (1 + 2 s).
  t.same(seen, [1, 1], 'DATA 1, resent once by timer, and no ERROR');
  await until(() => server.metrics.value('bootherd_tftp_transfers_total', { outcome: 'timeout' }) === 1, 'the timeout to be counted');
  t.equal(server.metrics.value('bootherd_tftp_active_transfers'), 0);
});

t.test('a repeated request does not start a second transfer', async (t) => {
  const server = await startServer(t, 'retries: 2');
  const c = await client(t, server);
  c.request('sub/small.txt');
  c.request('sub/small.txt');
  const { packet, port } = await c.recv();
  t.match(packet, { op: Op.DATA, block: 1 });
  c.send(encodeAck(1), port);
  await until(() => server.metrics.value('bootherd_tftp_transfers_total', { outcome: 'complete' }) === 1, 'completion');
  t.equal(server.metrics.value('bootherd_tftp_requests_total', { result: 'started' }), 1);
  t.equal(server.metrics.value('bootherd_tftp_requests_total', { result: 'repeated' }), 1);
});

t.test('beyond maxTransfers, requests wait their turn', async (t) => {
  const server = await startServer(t, 'maxTransfers: 1, retries: 3');
  const a = await client(t, server);
  const b = await client(t, server);
  a.request('sub/small.txt');
  const first = await a.recv();
  b.request('sub/small.txt');
  await until(() => server.metrics.value('bootherd_tftp_queued_requests') === 1 || server.metrics.render().includes('bootherd_tftp_queued_requests 1'), 'b to be queued');
  a.send(encodeAck(1), first.port);
  const second = await b.recv();
  t.match(second.packet, { op: Op.DATA, block: 1 }, 'b is served once a finishes');
  b.send(encodeAck(1), second.port);
  await until(() => server.metrics.value('bootherd_tftp_transfers_total', { outcome: 'complete' }) === 2, 'both to complete');
});

t.test('a known node fetching its loader is recorded in its boot timeline', { skip: noIpxe }, async (t) => {
  const server = await startServer(t, 'retries: 2');
  const c = await client(t, server);
  await c.fetch('undionly.kpxe', { blksize: '1432' });
  await until(() => server.timelines.get('n001') !== undefined, 'the timeline');
  t.match(server.timelines.get('n001')!.stages, [{ stage: 'tftp-loader', detail: 'undionly.kpxe' }]);
  await c.fetch('sub/small.txt');
  t.equal(server.timelines.get('n001')!.stages.length, 1, 'other files are not loaders');
});

t.test('a flood of unacknowledged requests from one address leaves room for a real client (curl)', { skip: missingTools('curl') }, async (t) => {
  const server = await startServer(t, 'maxTransfers: 40, maxTransfersPerClient: 4, retries: 5');
  const port = server.tftp!.port;
  // 200 requests from one address, each from its own port, asking for a 255 s timeout, never acknowledged.
  const flood: dgram.Socket[] = [];
  t.teardown(() => { for (const s of flood) s.close(); });
  for (let i = 0; i < 200; i++) {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.2', () => r()));
    s.on('message', () => undefined);
    s.send(encodeRequest({ op: Op.RRQ, filename: 'big.bin', mode: 'octet', options: new Map([['timeout', '255'], ['blksize', '1432']]) }), port, '127.0.0.1');
    flood.push(s);
  }
  await until(() => server.metrics.value('bootherd_tftp_requests_total', { result: 'started' }) + server.metrics.value('bootherd_tftp_dropped_total', { reason: 'client-limit' }) >= 200, 'the flood to be handled');
  t.match(server.metrics.render(), /^bootherd_tftp_active_transfers 4$/m, 'the flooding address holds 4 slots, no more');
  t.equal(server.metrics.value('bootherd_tftp_dropped_total', { reason: 'client-limit' }), 196, 'the rest of its requests are dropped');
  const out = path.join(dir, 'curl-big.bin');
  // Not spawnSync: the server runs in this process's event loop.
  const curl = spawn('curl', ['-sS', '--max-time', '30', '-o', out, `tftp://127.0.0.1:${port}/big.bin`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  curl.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number | null>((r) => curl.once('exit', r));
  t.equal(code, 0, `curl fetched the file during the flood ${stderr}`);
  t.equal(sha(readFileSync(out)), sha(big));
  // The flood's OACKs are never acknowledged: each slot is given up within the start bound (20 s at most), not 255 s x 63.
  await until(() => /^bootherd_tftp_active_transfers 0$/m.test(server.metrics.render()), 'the unacknowledged transfers to be given up', 40_000);
  t.equal(server.metrics.value('bootherd_tftp_transfers_total', { outcome: 'timeout' }), 4);
});
