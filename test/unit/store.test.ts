/** The embedded store: durability, group commit, torn writes, compaction and its crash points, the lock. */
import t from 'tap';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedStore } from '../../src/store/embedded.ts';
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

t.test('a torn last line (crash mid-write) is skipped', async (t) => {
  const dir = tmp();
  const a = new EmbeddedStore(dir);
  await a.open();
  await a.put('leases', lease(1).ip, lease(1));
  await a.close();
  appendFileSync(path.join(dir, 'journal-0.jsonl'), '{"c":"leases","k":"198.18.0.2","v":{"ip":"198.1');
  const b = new EmbeddedStore(dir);
  await b.open();
  t.equal(b.size('leases'), 1);
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

t.test('one process per state directory', async (t) => {
  const dir = tmp();
  const a = new EmbeddedStore(dir);
  await a.open();
  // Pretend another live process holds it: our parent's pid is alive and not ours.
  writeFileSync(path.join(dir, 'lock'), String(process.ppid));
  const b = new EmbeddedStore(dir);
  await t.rejects(b.open(), /state directory .* is in use by process \d+; stop it or point "state:" at another directory/);
  writeFileSync(path.join(dir, 'lock'), String(process.pid));
  await a.close();
});
