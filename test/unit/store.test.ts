/** The embedded store: durability, group commit, torn writes, compaction and its crash points, the lock. */
import t from 'tap';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import { createLogger, silentLogger } from '../../src/log.ts';
import { Metrics } from '../../src/metrics.ts';
import { Server } from '../../src/server.ts';
import { EmbeddedStore, StoreLoadError } from '../../src/store/embedded.ts';
import type { LeaseRecord } from '../../src/cluster/types.ts';

const lease = (i: number): LeaseRecord => ({ ip: `198.18.${i >> 8}.${i & 255}`, mac: `52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, subnet: '198.18.0.0/16', state: 'bound', expiresAt: 1, updatedAt: 1 });
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'bootherd-store-'));

t.test('writes are durable once resolved, and many share one fsync', async (t) => {
  const dir = tmp();
  const a = new EmbeddedStore(dir);
  await a.open();
  await Promise.all(Array.from({ length: 1000 }, (_, i) => a.put('leases', lease(i).ip, lease(i))));
  t.ok(a.flushes <= 3, `1000 writes took ${a.flushes} fsync(s)`);
  await a.delete('leases', lease(5).ip);
  await a.close();
  const b = new EmbeddedStore(dir);
  await b.open();
  t.equal(b.size('leases'), 999, 'all there after reopening');
  t.equal(b.get('leases', lease(5).ip), undefined, 'the delete too');
  t.same(b.get('leases', lease(7).ip), lease(7));
  await b.close();
});

t.test('every field DHCP writes into a lease survives a reopen (the load-time check knows them all)', async (t) => {
  const dir = tmp();
  const a = new EmbeddedStore(dir);
  await a.open();
  const full: LeaseRecord = { ...lease(9), clientId: '01525400000009', hostname: 'n009', node: 'n009', relay: '198.18.1.1', interface: 'eth0', circuitId: '0a0b', remoteId: '', server: '198.18.0.1' };
  const offered: LeaseRecord = { ...lease(10), state: 'offered', server: '198.18.0.2' };
  await a.put('leases', full.ip, full);
  await a.put('leases', offered.ip, offered);
  await a.close();
  const b = new EmbeddedStore(dir);
  await b.open();
  t.same(b.get('leases', full.ip), full);
  t.same(b.get('leases', offered.ip), offered);
  await b.close();
});

t.test('a torn last line (crash mid-write) is skipped, cut off and counted', async (t) => {
  const dir = tmp();
  const a = new EmbeddedStore(dir);
  await a.open();
  await a.put('leases', lease(1).ip, lease(1));
  await a.close();
  const journal = path.join(dir, 'journal-0.jsonl');
  const whole = readFileSync(journal, 'utf8');
  appendFileSync(journal, '{"c":"leases","k":"198.18.0.2","v":{"ip":"198.1');
  const metrics = new Metrics();
  const b = new EmbeddedStore(dir, { metrics });
  await b.open();
  t.equal(b.size('leases'), 1);
  t.match(metrics.render(), /bootherd_store_damaged_lines_total\{kind="torn"\} 1\n/);
  t.match(metrics.render(), /bootherd_store_damaged_lines_total\{kind="quarantined"\} 0\n/, 'nothing quarantined');
  t.equal(readFileSync(journal, 'utf8'), whole, 'the torn bytes are cut off');
  await b.put('leases', lease(3).ip, lease(3));
  await b.close();
  const c = new EmbeddedStore(dir);
  await c.open();
  t.equal(c.size('leases'), 2, 'later writes after a torn line still load');
  await c.close();
});

t.test('compaction keeps every record and removes the old journal', async (t) => {
  const dir = tmp();
  const a = new EmbeddedStore(dir, { compactSlack: 100 });
  await a.open();
  for (let round = 0; round < 5; round++) {
    await Promise.all(Array.from({ length: 100 }, (_, i) => a.put('leases', lease(i).ip, { ...lease(i), updatedAt: round })));
  }
  await a.compact();
  await a.close();
  const files = readdirSync(dir);
  t.ok(files.includes('snapshot.jsonl'), 'snapshot written');
  t.equal(files.filter((f) => f.startsWith('journal-')).length, 1, 'one journal left');
  const b = new EmbeddedStore(dir);
  await b.open();
  t.equal(b.size('leases'), 100);
  t.equal(b.get('leases', lease(42).ip)!.updatedAt, 4, 'latest values');
  await b.close();
});

t.test('a crash between starting a new journal and renaming the snapshot loses nothing', async (t) => {
  const dir = tmp();
  const a = new EmbeddedStore(dir);
  await a.open();
  await a.put('leases', lease(1).ip, lease(1));
  await a.close();
  // What the directory looks like if compaction died after writes went to journal-1 but before the rename.
  writeFileSync(path.join(dir, 'journal-1.jsonl'), JSON.stringify({ c: 'leases', k: lease(2).ip, v: lease(2) }) + '\n');
  writeFileSync(path.join(dir, 'snapshot-1.tmp'), '{"gen":1}\n');
  const b = new EmbeddedStore(dir);
  await b.open();
  t.equal(b.size('leases'), 2, 'both journals replayed');
  await b.close();
  t.ok(existsSync(path.join(dir, 'journal-1.jsonl')), 'the newer journal is kept');
  t.notOk(existsSync(path.join(dir, 'snapshot-1.tmp')), 'the half-written snapshot is removed');
});

/** A journal of three leases whose middle line is replaced by `bad`. */
async function journalWithMiddle(bad: string | Buffer): Promise<{ dir: string; journal: string }> {
  const dir = tmp();
  const a = new EmbeddedStore(dir);
  await a.open();
  for (const i of [1, 2, 3]) await a.put('leases', lease(i).ip, lease(i));
  await a.close();
  const journal = path.join(dir, 'journal-0.jsonl');
  const [first, , third] = readFileSync(journal, 'utf8').split('\n');
  writeFileSync(journal, Buffer.concat([Buffer.from(`${first}\n`), Buffer.from(bad), Buffer.from(`\n${third}\n`)]));
  return { dir, journal };
}

const damagedMiddles: [string, string | Buffer, RegExp][] = [
  ['cut JSON', '{"c":"leases","k":"198.18.0.2","v":{"ip":"198.1', /not a JSON record/],
  ['a record that fails validation like API input', JSON.stringify({ c: 'leases', k: lease(2).ip, v: { ...lease(2), state: 'leased' } }), /invalid leases record "198\.18\.0\.2": state: expected a lease state: offered, bound, released, declined/],
  ['an unknown collection', JSON.stringify({ c: 'lease', k: 'x', v: {} }), /unknown collection "lease"/],
  ['bytes that are not UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /not UTF-8/],
];

for (const [what, bad, reason] of damagedMiddles) {
  t.test(`a damaged middle line (${what}) refuses the open, naming file, line and the repair`, async (t) => {
    const { dir, journal } = await journalWithMiddle(bad);
    const before = readFileSync(journal);
    const b = new EmbeddedStore(dir);
    const err = await b.open().then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof StoreLoadError, 'refused');
    t.match((err as Error).message, new RegExp(`^${journal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: `), 'names the file and the line');
    t.match((err as Error).message, reason, 'says what is wrong');
    t.match((err as Error).message, /bootherd serve --repair-store/, 'says how to recover');
    t.same(readFileSync(journal), before, 'the journal is left as it was');
    t.notOk(existsSync(path.join(dir, 'lock')), 'the lock is released');
  });
}

t.test('--repair-store moves a damaged middle line aside, keeps the rest, and counts it', async (t) => {
  const bad = '{"c":"leases","k":"198.18.0.2","v":{"ip":"198.1';
  const { dir, journal } = await journalWithMiddle(bad);
  const metrics = new Metrics();
  const b = new EmbeddedStore(dir, { metrics, repair: true });
  await b.open();
  t.same([...b.values('leases')].map((l) => l.ip).sort(), [lease(1).ip, lease(3).ip], 'the lines around it are kept');
  t.match(metrics.render(), /bootherd_store_damaged_lines_total\{kind="quarantined"\} 1\n/);
  await b.put('leases', lease(4).ip, lease(4));
  await b.close();
  const quarantined = readdirSync(dir).filter((f) => f.startsWith('journal-0.jsonl.corrupt-'));
  t.equal(quarantined.length, 1, 'one quarantine file');
  t.equal(readFileSync(path.join(dir, quarantined[0]!), 'utf8'), bad + '\n', 'holding the damaged line');
  t.notMatch(readFileSync(journal, 'utf8'), bad, 'gone from the journal');
  const c = new EmbeddedStore(dir);
  await c.open();
  t.equal(c.size('leases'), 3, 'the repaired directory opens without --repair-store');
  await c.close();
});

t.test('a damaged snapshot line is refused too', async (t) => {
  const dir = tmp();
  const a = new EmbeddedStore(dir);
  await a.open();
  for (const i of [1, 2]) await a.put('leases', lease(i).ip, lease(i));
  await a.compact();
  await a.close();
  const snapshot = path.join(dir, 'snapshot.jsonl');
  writeFileSync(snapshot, readFileSync(snapshot, 'utf8').replace('"bound"', '"bogus"'));
  await t.rejects(new EmbeddedStore(dir).open(), new RegExp(`snapshot\\.jsonl:2: invalid leases record`));
  writeFileSync(snapshot, readFileSync(snapshot, 'utf8').replace(/^\{"gen":\d+\}/, '{"gen":"x"}'));
  await t.rejects(new EmbeddedStore(dir, { repair: true }).open(), /snapshot\.jsonl:1: expected the snapshot header \{"gen":N\}\. .*fix line 1 by hand \(--repair-store cannot/, 'a damaged header: even repair refuses, and says so');
});

const TSX = import.meta.resolve('tsx');
const HOLDER = path.join(import.meta.dirname, '../helpers/store-holder.ts');

t.test('two opens of one state directory: the second fails naming the holder; a dead holder\'s lock is taken over', async (t) => {
  const dir = tmp();
  const holder = spawn(process.execPath, ['--import', TSX, HOLDER, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { holder.kill('SIGKILL'); });
  const opened = await new Promise<string>((resolve, reject) => {
    let out = '';
    holder.stdout.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('\n')) resolve(out); });
    holder.once('exit', (code) => reject(new Error(`holder exited (${code}) before opening: ${out}`)));
  });
  t.equal(opened, `open ${holder.pid}\n`);
  await t.rejects(new EmbeddedStore(dir).open(), new RegExp(`state directory .* is in use by process ${holder.pid}; stop it or point "state:" at another directory`));
  const exited = new Promise((resolve) => holder.once('exit', resolve));
  holder.kill('SIGKILL');
  await exited;
  t.equal(readFileSync(path.join(dir, 'lock'), 'utf8'), String(holder.pid), 'the dead holder left its lock');
  const b = new EmbeddedStore(dir);
  await b.open();
  t.equal(readFileSync(path.join(dir, 'lock'), 'utf8'), String(process.pid), 'taken over');
  await b.close();
});

t.test('a second store on a directory this process holds is refused', async (t) => {
  const dir = tmp();
  const a = new EmbeddedStore(dir);
  await a.open();
  await t.rejects(new EmbeddedStore(dir).open(), /in use by this process/);
  await a.close();
  const b = new EmbeddedStore(dir);
  await b.open();
  await b.close();
});

t.test('the server opens its store with its log and metrics, and --repair-store reaches it', async (t) => {
  const { dir } = await journalWithMiddle('{"c":"leases"');
  const config = parseConfig(`head: { address: 198.18.0.1 }\nstate: ${dir}\nsubnets: [{ network: 198.18.0.0/24 }]\n` +
    'dhcp: { enabled: false }\ntftp: { enabled: false }\ndns: { enabled: false }\nntp: { enabled: false }\nhttp: { enabled: false }\niscsi: { enabled: false }\n', 'cluster.yaml');
  await t.rejects(new Server(config, { log: silentLogger }).open(), StoreLoadError, 'without the flag: refused');
  const lines: string[] = [];
  const log = createLogger('warn', new Writable({ write(chunk: Buffer, _encoding, done) { lines.push(chunk.toString()); done(); } }));
  const server = new Server(config, { log, repairStore: true });
  await server.open();
  t.equal(server.store.size('leases'), 2, 'opened, the damaged line aside');
  t.equal(server.metrics.value('bootherd_store_damaged_lines_total', { kind: 'quarantined' }), 1, 'counted on the server\'s /metrics');
  t.match(lines.join(''), /"level":50.*REPAIR moved damaged line 2 of journal-0\.jsonl to journal-0\.jsonl\.corrupt-/, 'said loudly, in the server\'s log');
  await server.stop();
});
