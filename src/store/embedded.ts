/**
 * The embedded store: everything in one state directory, no server to run.
 *
 * Layout:
 *   snapshot.jsonl      first line {"gen":G}, then one record a line
 *   journal-<G>.jsonl   every change since that snapshot, appended
 *   lock                holds the pid of the process that owns the directory
 *
 * Durability by group commit: `put` appends its line to a pending batch and
 * returns a promise; one flush writes the whole batch and fdatasyncs once, then
 * resolves every promise in it. Under load, hundreds of leases share one fsync,
 * and no caller is told "done" before its record is on disk. A crash can only
 * tear the last, unacknowledged line, which loading skips and cuts off.
 *
 * Compaction starts a new journal generation at once (new writes go there),
 * writes a snapshot of that instant in the background, renames it into place
 * (the atomic commit point) and then removes the old journal. Loading replays
 * the snapshot's generation and every later journal, so a crash at any step
 * loses nothing.
 */
import { closeSync, openSync, readFileSync, readdirSync, writeFileSync, unlinkSync, mkdirSync, existsSync, fsyncSync, truncateSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { LeaseRecord } from '../cluster/types.ts';
import { LocalGuards } from './local-guards.ts';
import { COLLECTIONS, type ChangeListener, type ClaimExpect, type ClaimOutcome, type CollectionName, type Collections, type Store, type StoreGuard, type StoreOp } from './store.ts';

/**
 * The lines of one group commit and the one promise every write in it gets:
 * under load a write costs an array slot, not a promise and two closures of
 * its own, and a flush resolves one promise, not hundreds.
 */
interface Pending {
  readonly lines: string[];
  readonly done: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

function newPending(): Pending {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const done = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  return { lines: [], done, resolve, reject };
}

export interface EmbeddedStoreOptions {
  /** Compact when the journal has this many more lines than there are live records (default 50,000). */
  readonly compactSlack?: number;
  /**
   * Least time between the starts of two journal flushes, in ms (default 5).
   * Each fdatasync costs the kernel a journal commit and a disk flush whatever
   * it carries; on a fast disk, flushing as soon as the last one finished
   * means many small syncs (measured at 4,500 DHCP leases/s without the
   * interval: about 700 fdatasyncs a second, 6 records each). A short wait
   * lets a batch gather: at most this much added latency per write, fewer
   * syncs under load, and nothing changes for a lone write after a quiet
   * moment (it flushes at once).
   */
  readonly commitIntervalMs?: number;
}

type Tables = { [C in CollectionName]: Map<string, Collections[C]> };

function emptyTables(): Tables {
  return { nodes: new Map(), hosts: new Map(), srv: new Map(), leases: new Map(), boots: new Map() };
}

export class EmbeddedStore implements Store {
  private tables: Tables = emptyTables();
  private listeners = new Set<ChangeListener>();
  private journal: FileHandle | undefined;
  private generation = 0;
  private journalLines = 0;
  private pending: Pending = newPending();
  private io: Promise<void> = Promise.resolve();
  private flushQueued = false;
  private lastFlushStart = -Infinity;
  private snapshotting: Promise<void> | undefined;
  private closed = false;
  private readonly compactSlack: number;
  private readonly commitIntervalMs: number;
  /** Journal flushes (one fdatasync each) so far: with group commit, far fewer than writes. */
  flushes = 0;

  constructor(readonly dir: string, options: EmbeddedStoreOptions = {}) {
    this.compactSlack = options.compactSlack ?? 50_000;
    this.commitIntervalMs = options.commitIntervalMs ?? 5;
  }

  async open(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.takeLock();
    const snapshotFile = path.join(this.dir, 'snapshot.jsonl');
    if (existsSync(snapshotFile)) {
      const lines = readFileSync(snapshotFile, 'utf8').split('\n');
      const head = JSON.parse(lines[0] ?? '{}') as { gen?: number };
      this.generation = head.gen ?? 0;
      for (let i = 1; i < lines.length; i++) this.applyLine(lines[i]!, false);
    }
    // Replay this generation's journal and any later one (a compaction that crashed before its rename).
    const journals = readdirSync(this.dir)
      .map((f) => /^journal-(\d+)\.jsonl$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    // A snapshot that was being written when the process died is incomplete: drop it.
    for (const f of readdirSync(this.dir)) if (/^snapshot-\d+\.tmp$/.test(f)) unlinkSync(path.join(this.dir, f));
    let last = this.generation;
    for (const gen of journals) {
      const file = path.join(this.dir, `journal-${gen}.jsonl`);
      if (gen < this.generation) { unlinkSync(file); continue; }
      const text = readFileSync(file, 'utf8');
      const lines = text.split('\n');
      for (const line of lines) if (this.applyLine(line, false)) this.journalLines++;
      // A crash mid-write leaves a line without its newline; it was never
      // acknowledged. Cut it off, or the next append would be glued to it.
      const end = text.lastIndexOf('\n') + 1;
      if (end < text.length) truncateSync(file, Buffer.byteLength(text.slice(0, end)));
      last = gen;
    }
    this.generation = last;
    this.journal = await open(path.join(this.dir, `journal-${this.generation}.jsonl`), 'a');
  }

  /** One process per state directory: two writers would interleave journals. */
  private takeLock(): void {
    const lock = path.join(this.dir, 'lock');
    try {
      const pid = Number(readFileSync(lock, 'utf8'));
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new Error(`state directory ${this.dir} is in use by process ${pid}; stop it or point "state:" at another directory`);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    writeFileSync(lock, String(process.pid));
  }

  /** Applies one journal line to memory; returns false for blank or torn lines. */
  private applyLine(line: string, notify: boolean): boolean {
    if (!line) return false;
    let rec: { c: CollectionName; k: string; v?: unknown };
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      return false; // a torn last line from a crash mid-write: it was never acknowledged
    }
    if (!COLLECTIONS.includes(rec.c)) return false;
    const table = this.tables[rec.c] as Map<string, unknown>;
    if (rec.v === undefined) table.delete(rec.k);
    else table.set(rec.k, rec.v);
    if (notify) this.emit(rec.c, rec.k, rec.v as Collections[CollectionName] | undefined);
    return true;
  }

  get<C extends CollectionName>(collection: C, key: string): Collections[C] | undefined {
    return this.tables[collection].get(key) as Collections[C] | undefined;
  }

  values<C extends CollectionName>(collection: C): IterableIterator<Collections[C]> {
    return this.tables[collection].values() as IterableIterator<Collections[C]>;
  }

  size(collection: CollectionName): number {
    return this.tables[collection].size;
  }

  /** Every record of a collection with its key (`bootherd store migrate` copies them as they are). */
  entries<C extends CollectionName>(collection: C): IterableIterator<[string, Collections[C]]> {
    return (this.tables[collection] as Map<string, Collections[C]>).entries();
  }

  private guards = new LocalGuards((c, k) => this.tables[c].has(k));

  revision(collection: CollectionName, key: string): number {
    return this.guards.revision(collection, key);
  }

  async transact(guards: readonly StoreGuard[], ops: readonly StoreOp[]): Promise<boolean> {
    if (!this.guards.holds(guards)) return false;
    await Promise.all(ops.map((o) => (o.op === 'put' ? this.put(o.collection, o.key, o.value) : this.delete(o.collection, o.key))));
    return true;
  }

  claimRevisions(ip: string, clientKey: string): ClaimExpect {
    return this.guards.claimRevisions(ip, clientKey);
  }

  /** The lease line goes through the group commit like any put; the client index is in memory only (see LocalGuards). */
  async claim(clientKey: string, lease: LeaseRecord, expect: ClaimExpect): Promise<ClaimOutcome> {
    const refused = this.guards.refusal(lease.ip, clientKey, expect, this.get('leases', lease.ip));
    if (refused) return refused;
    const done = this.put('leases', lease.ip, lease);
    const revision = this.guards.bound(clientKey, lease.ip);
    await done;
    return { claimed: true, revision };
  }

  put<C extends CollectionName>(collection: C, key: string, value: Collections[C]): Promise<void> {
    (this.tables[collection] as Map<string, Collections[C]>).set(key, value);
    this.guards.wrote(collection, key, true);
    const done = this.append(JSON.stringify({ c: collection, k: key, v: value }));
    this.emit(collection, key, value);
    return done;
  }

  delete(collection: CollectionName, key: string): Promise<void> {
    if (!this.tables[collection].delete(key)) return Promise.resolve();
    this.guards.wrote(collection, key, false);
    const done = this.append(JSON.stringify({ c: collection, k: key }));
    this.emit(collection, key, undefined);
    return done;
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit<C extends CollectionName>(collection: C, key: string, value: Collections[C] | undefined): void {
    for (const l of this.listeners) l({ collection, key, value });
  }

  private append(line: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    this.pending.lines.push(line);
    if (!this.flushQueued) {
      this.flushQueued = true;
      // Every put made while handling this round of I/O joins the batch; the
      // flush then waits for the commit interval and behind a write already
      // in flight, gathering more.
      const flush = () => void this.serial(() => this.flushBatch());
      const wait = this.lastFlushStart + this.commitIntervalMs - performance.now();
      if (wait > 0) setTimeout(flush, wait);
      else setImmediate(flush);
    }
    return this.pending.done;
  }

  /** Journal writes and journal switches run one at a time, in order. */
  private serial(step: () => Promise<void>): Promise<void> {
    const run = this.io.then(step);
    this.io = run.catch(() => undefined);
    return run;
  }

  private async flushBatch(): Promise<void> {
    this.flushQueued = false;
    const batch = this.pending;
    if (!batch.lines.length) return;
    this.lastFlushStart = performance.now();
    this.pending = newPending();
    try {
      const journal = this.journal!;
      await journal.write(batch.lines.join('\n') + '\n');
      await journal.datasync();
      this.flushes++;
      this.journalLines += batch.lines.length;
      batch.resolve();
    } catch (e) {
      batch.reject(e as Error);
      return;
    }
    if (!this.snapshotting && this.journalLines >= this.liveRecords() + this.compactSlack) await this.switchJournal();
  }

  private liveRecords(): number {
    let n = 0;
    for (const c of COLLECTIONS) n += this.tables[c].size;
    return n;
  }

  /** Compacts the state into a snapshot and a fresh journal; resolves when the snapshot is in place. */
  async compact(): Promise<void> {
    await this.snapshotting;
    await this.serial(() => this.switchJournal());
    await this.snapshotting;
  }

  /**
   * Runs between journal writes: starts generation G+1's journal and captures
   * memory as of this instant; the snapshot is written in the background while
   * new writes already go to the new journal.
   */
  private async switchJournal(): Promise<void> {
    // One snapshot at a time: wait for a previous one still being written.
    await this.snapshotting;
    const oldGen = this.generation;
    const newGen = oldGen + 1;
    const newJournal = await open(path.join(this.dir, `journal-${newGen}.jsonl`), 'a');
    const oldJournal = this.journal!;
    this.journal = newJournal;
    this.generation = newGen;
    this.journalLines = 0;
    const lines: string[] = [JSON.stringify({ gen: newGen })];
    for (const c of COLLECTIONS) for (const [k, v] of this.tables[c]) lines.push(JSON.stringify({ c, k, v }));
    await oldJournal.close();
    this.snapshotting = this.writeSnapshot(lines, oldGen, newGen).finally(() => { this.snapshotting = undefined; });
  }

  private async writeSnapshot(lines: string[], oldGen: number, newGen: number): Promise<void> {
    const tmp = path.join(this.dir, `snapshot-${newGen}.tmp`);
    const fh = await open(tmp, 'w');
    try {
      await fh.write(lines.join('\n') + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path.join(this.dir, 'snapshot.jsonl'));
    syncDir(this.dir);
    await unlink(path.join(this.dir, `journal-${oldGen}.jsonl`)).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.serial(() => this.flushBatch());
    await this.snapshotting;
    await this.journal?.close();
    this.journal = undefined;
    try { unlinkSync(path.join(this.dir, 'lock')); } catch { /* already gone */ }
  }
}

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
