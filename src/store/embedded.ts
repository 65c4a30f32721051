/**
 * The embedded store: everything in one state directory, no server to run.
 *
 * Layout:
 *   snapshot.jsonl      first line {"gen":G}, then one record a line
 *   journal-<G>.jsonl   every change since that snapshot, appended
 *   lock                the pid of the process that owns the directory, created
 *                       atomically (link(2) fails if it exists, like O_EXCL)
 *
 * Durability by group commit: `put` appends its line to a pending batch and
 * returns a promise; one flush writes the whole batch and fdatasyncs once, then
 * resolves every promise in it. Under load, hundreds of leases share one fsync,
 * and no caller is told "done" before its record is on disk. A crash can only
 * tear the last, unacknowledged line (no newline yet), which loading skips,
 * cuts off and counts. Any other line that is not a valid record (checked
 * with the API's schemas) is damage: loading refuses, naming the file and
 * line, unless asked to repair (docs/store.md, "Damage and repair").
 *
 * Compaction starts a new journal generation at once (new writes go there),
 * writes a snapshot of that instant in the background, renames it into place
 * (the atomic commit point) and then removes the old journal. Loading replays
 * the snapshot's generation and every later journal, so a crash at any step
 * loses nothing.
 */
import { closeSync, openSync, readFileSync, readdirSync, writeFileSync, unlinkSync, mkdirSync, existsSync, fsyncSync, truncateSync, linkSync, realpathSync, renameSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fieldPath } from '../config/load.ts';
import type { Logger } from '../log.ts';
import { Metrics, type Series } from '../metrics.ts';
import { recordSchemas } from './records.ts';
import type { LeaseRecord } from '../cluster/types.ts';
import { LocalGuards } from './local-guards.ts';
import { COLLECTIONS, type ChangeListener, type ClaimExpect, type ClaimOutcome, type ClaimSupersede, type CollectionName, type Collections, type Store, type StoreGuard, type StoreOp } from './store.ts';

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
  /** Where damage found at open is reported: a torn last line (warning), a repaired line (error). */
  readonly log?: Logger;
  /** Registers bootherd_store_damaged_lines_total{kind}. */
  readonly metrics?: Metrics;
  /**
   * Open despite damaged lines: each is moved to <file>.corrupt-<time> and
   * the file is rewritten without it (`bootherd serve --repair-store`).
   * Without it, damage refuses the open with a StoreLoadError.
   */
  readonly repair?: boolean;
}

/**
 * A line on disk that is not a valid record, and not the torn last line of
 * the newest journal: the store refuses to open rather than drop it
 * silently. The message says how to recover.
 */
export class StoreLoadError extends Error {
  constructor(readonly file: string, readonly line: number, readonly reason: string, dir: string, repairable = true) {
    super(`${file}:${line}: ${reason}. bootherd stops here rather than drop this record silently. ` +
      `To recover: copy ${dir} aside (cp -a ${dir} ${dir}.bak), then ` + (repairable
      ? `either fix line ${line} by hand, or start once with \`bootherd serve --repair-store\`, which moves each damaged line to ` +
        `${path.basename(file)}.corrupt-<time> and keeps every other record (the changes those lines held are lost`
      : `fix line ${line} by hand (--repair-store cannot: it does not guess which journals the snapshot already holds`) +
      `; docs/store.md, "Damage and repair")`);
    this.name = 'StoreLoadError';
  }
}

/** One journal or snapshot line: a change to a collection (no `v`: a deletion). */
interface Line { readonly c: CollectionName; readonly k: string; readonly v?: Collections[CollectionName] }

/** The line as a validated change, or why it is not one. */
function parseLine(text: string): Line | string {
  let rec: unknown;
  try {
    rec = JSON.parse(text);
  } catch (e) {
    return `not a JSON record (${(e as Error).message})`;
  }
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return 'not a record (expected {"c":collection,"k":key,"v":value})';
  const { c, k, v, ...rest } = rec as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length) return `unknown field${extra.length > 1 ? 's' : ''} ${extra.join(', ')} in a record`;
  if (!COLLECTIONS.includes(c as CollectionName)) return `unknown collection ${JSON.stringify(c)} (expected one of ${COLLECTIONS.join(', ')})`;
  const collection = c as CollectionName;
  if (typeof k !== 'string' || !k) return `a ${collection} record without a key`;
  if (!('v' in rec)) return { c: collection, k };
  const parsed = recordSchemas[collection].safeParse(v);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return `invalid ${collection} record ${JSON.stringify(k)}: ${fieldPath(issue.path) || '(the record)'}: ${issue.message}`;
  }
  return { c: collection, k, v: parsed.data };
}

/** Strict: a byte sequence that is not UTF-8 is damage, not text to patch with U+FFFD. */
const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeLine(bytes: Buffer): string | undefined {
  try { return utf8.decode(bytes); } catch { return undefined; }
}

const NEWLINE = Buffer.from('\n');

/** A file's whole lines (each ended by a newline, without it), and what follows the last newline. */
function splitLines(buf: Buffer): { lines: Buffer[]; torn: Buffer | undefined } {
  const lines: Buffer[] = [];
  let start = 0;
  for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
    lines.push(buf.subarray(start, nl));
    start = nl + 1;
  }
  return { lines, torn: start < buf.length ? buf.subarray(start) : undefined };
}

/** A line that is not a valid record, by its 1-based number. */
interface Damage { readonly line: number; readonly reason: string; readonly bytes: Buffer }

/** State directories this process holds: a second store on one of them is refused like another process. */
const heldDirs = new Set<string>();

type Tables = { [C in CollectionName]: Map<string, Collections[C]> };

function emptyTables(): Tables {
  return { nodes: new Map(), hosts: new Map(), srv: new Map(), leases: new Map(), boots: new Map(), addresses: new Map() };
}

export class EmbeddedStore implements Store {
  readonly shared = false;
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
  private readonly log: Logger | undefined;
  private readonly repair: boolean;
  private readonly damageCounter: (kind: 'torn' | 'quarantined') => Series;
  private lockedDir: string | undefined;
  /** Journal flushes (one fdatasync each) so far: with group commit, far fewer than writes. */
  flushes = 0;

  constructor(readonly dir: string, options: EmbeddedStoreOptions = {}) {
    this.compactSlack = options.compactSlack ?? 50_000;
    this.commitIntervalMs = options.commitIntervalMs ?? 5;
    this.log = options.log;
    this.repair = options.repair ?? false;
    this.damageCounter = (options.metrics ?? new Metrics())
      .counter('bootherd_store_damaged_lines_total', 'Lines of the state directory found damaged when the store opened: torn (a crash mid-write, never acknowledged; cut off) or quarantined (--repair-store moved them aside)')
      .by('kind');
    // Both series exist from the start, at 0, so an alert on them has something to read.
    this.damageCounter('torn');
    this.damageCounter('quarantined');
  }

  async open(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    this.takeLock();
    try {
      this.load();
      this.journal = await open(path.join(this.dir, `journal-${this.generation}.jsonl`), 'a');
    } catch (e) {
      this.releaseLock();
      throw e;
    }
  }

  private load(): void {
    const snapshotFile = path.join(this.dir, 'snapshot.jsonl');
    if (existsSync(snapshotFile)) this.loadSnapshot(snapshotFile);
    // Replay this generation's journal and any later one (a compaction that crashed before its rename).
    const journals = readdirSync(this.dir)
      .map((f) => /^journal-(\d+)\.jsonl$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    // A snapshot that was being written when the process died is incomplete: drop it.
    for (const f of readdirSync(this.dir)) if (/^snapshot-\d+\.tmp$/.test(f)) unlinkSync(path.join(this.dir, f));
    const live = journals.filter((gen) => gen >= this.generation);
    for (const gen of journals) if (gen < this.generation) unlinkSync(path.join(this.dir, `journal-${gen}.jsonl`));
    live.forEach((gen, i) => this.loadJournal(path.join(this.dir, `journal-${gen}.jsonl`), i === live.length - 1));
    this.generation = live.at(-1) ?? this.generation;
  }

  /** The snapshot was synced before its rename: every line of it must be whole and valid. */
  private loadSnapshot(file: string): void {
    const { lines, torn } = splitLines(readFileSync(file));
    const head = lines[0] === undefined ? undefined : decodeLine(lines[0]);
    let gen: unknown;
    try { gen = (JSON.parse(head ?? '') as { gen?: unknown }).gen; } catch { /* reported below */ }
    // Without its generation the snapshot cannot be placed among the journals: no repair guesses it.
    if (typeof gen !== 'number' || !Number.isSafeInteger(gen) || gen < 0) throw new StoreLoadError(file, 1, 'expected the snapshot header {"gen":N}', this.dir, false);
    this.generation = gen;
    const { damaged } = this.applyLines(lines, 1);
    if (torn) damaged.push({ line: lines.length + 1, reason: 'the snapshot ends in the middle of a line (it is written whole before it is renamed into place)', bytes: torn });
    this.damaged(file, damaged);
  }

  /**
   * Replays one journal. Only the newest may end in a torn line: a crash in
   * the middle of a write, never acknowledged. It is cut off (or the next
   * append would be glued to it) and counted.
   */
  private loadJournal(file: string, newest: boolean): void {
    const buf = readFileSync(file);
    const { lines, torn } = splitLines(buf);
    const { applied, damaged } = this.applyLines(lines, 0);
    this.journalLines += applied;
    if (torn && newest) {
      truncateSync(file, buf.length - torn.length);
      this.damageCounter('torn').value++;
      this.log?.warn({ file, line: lines.length + 1, bytes: torn.length }, 'store: cut off the torn last journal line (a crash in the middle of a write, never acknowledged)');
    } else if (torn) {
      damaged.push({ line: lines.length + 1, reason: 'a journal that a newer one follows ends in the middle of a line', bytes: torn });
    }
    this.damaged(file, damaged);
  }

  /** Applies whole lines from index `from` on; returns those that are not valid records. */
  private applyLines(lines: readonly Buffer[], from: number): { applied: number; damaged: Damage[] } {
    const damaged: Damage[] = [];
    let applied = 0;
    for (let i = from; i < lines.length; i++) {
      const bytes = lines[i]!;
      if (!bytes.length) continue;
      const text = decodeLine(bytes);
      const line = text === undefined ? 'bytes that are not UTF-8 text' : parseLine(text);
      if (typeof line === 'string') {
        damaged.push({ line: i + 1, reason: line, bytes });
        continue;
      }
      const table = this.tables[line.c] as Map<string, unknown>;
      if (line.v === undefined) table.delete(line.k);
      else table.set(line.k, line.v);
      applied++;
    }
    return { applied, damaged };
  }

  /**
   * Damage other than a torn last line: refused, naming the first damaged
   * line; with `repair`, every damaged line is moved to <file>.corrupt-<time>
   * and the file is rewritten without them.
   */
  private damaged(file: string, damaged: readonly Damage[]): void {
    if (!damaged.length) return;
    if (!this.repair) throw new StoreLoadError(file, damaged[0]!.line, damaged[0]!.reason, this.dir);
    const quarantine = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    writeSynced(quarantine, damaged.map((d) => d.bytes), 'wx');
    const bad = new Set(damaged.map((d) => d.line));
    const { lines } = splitLines(readFileSync(file));
    const tmp = `${file}.repair.tmp`;
    writeSynced(tmp, lines.filter((_, i) => !bad.has(i + 1)), 'w');
    renameSync(tmp, file);
    syncDir(this.dir);
    this.damageCounter('quarantined').value += damaged.length;
    for (const d of damaged) {
      this.log?.error({ file, line: d.line, reason: d.reason, quarantine }, `store: REPAIR moved damaged line ${d.line} of ${path.basename(file)} to ${path.basename(quarantine)}; the change it held is lost`);
    }
  }

  /**
   * One process per state directory: two writers would interleave journals.
   * The lock is created whole and atomically (a file with our pid, linked to
   * `lock`: link fails if it exists). A lock whose process is gone is taken
   * over under `lock.takeover`, created with O_EXCL, so two heirs cannot both
   * win.
   */
  private takeLock(): void {
    const dir = realpathSync(this.dir);
    const lock = path.join(dir, 'lock');
    if (heldDirs.has(dir)) throw inUse(dir, process.pid);
    const mine = path.join(dir, `lock.${process.pid}.tmp`);
    writeFileSync(mine, String(process.pid));
    try {
      for (let attempt = 0; !tryLink(mine, lock); attempt++) {
        if (attempt === 5) throw new Error(`could not take the lock of state directory ${dir}; remove ${lock} if no bootherd uses the directory`);
        const holder = lockHolder(lock);
        if (holder === undefined) continue; // released meanwhile: try again
        // Our own pid in a lock this process does not hold was left by an earlier process with our pid (a container's pid 1).
        if (holder > 0 && holder !== process.pid && isAlive(holder)) throw inUse(dir, holder);
        takeOverStale(dir, lock, holder);
      }
    } finally {
      unlinkSync(mine);
    }
    heldDirs.add(dir);
    this.lockedDir = dir;
  }

  private releaseLock(): void {
    const dir = this.lockedDir;
    if (!dir) return;
    this.lockedDir = undefined;
    heldDirs.delete(dir);
    if (lockHolder(path.join(dir, 'lock')) === process.pid) unlinkSync(path.join(dir, 'lock'));
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

  private guards = new LocalGuards(this);

  revision(collection: CollectionName, key: string): number {
    return this.guards.revision(collection, key);
  }

  transact(guards: readonly StoreGuard[], ops: readonly StoreOp[]): Promise<boolean> {
    return this.guards.transact(guards, ops);
  }

  claimRevisions(ip: string, clientKey: string): ClaimExpect {
    return this.guards.claimRevisions(ip, clientKey);
  }

  claimedBy(clientKey: string): string | undefined {
    return this.guards.claimedBy(clientKey);
  }

  claim(clientKey: string, lease: LeaseRecord, expect: ClaimExpect, supersede?: ClaimSupersede): Promise<ClaimOutcome> {
    return this.guards.claim(clientKey, lease, expect, supersede);
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
    this.releaseLock();
  }
}

function inUse(dir: string, pid: number): Error {
  const who = pid === process.pid ? `this process (pid ${pid}) through another store` : `process ${pid}`;
  return new Error(`state directory ${dir} is in use by ${who}; stop it or point "state:" at another directory`);
}

/** link(2): creates `lock` with the pid already in it, or fails if it exists (as open with O_EXCL would). */
function tryLink(from: string, lock: string): boolean {
  try {
    linkSync(from, lock);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** The pid in a lock file (0 if it holds none); undefined if there is no lock. */
function lockHolder(lock: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(lock, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : 0;
}

/**
 * Removes a lock left by a dead process, once: under `lock.takeover`
 * (O_EXCL), checks that the lock still names that process, then unlinks it.
 * The caller then races for the free lock by link(2) like anyone else.
 */
function takeOverStale(dir: string, lock: string, stalePid: number): void {
  const guard = path.join(dir, 'lock.takeover');
  let fd: number;
  try {
    fd = openSync(guard, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    throw new Error(`state directory ${dir}: another process is taking over the lock of process ${stalePid}, which is gone; if none is, remove ${guard} and start again`);
  }
  try {
    if (lockHolder(lock) === stalePid) unlinkSync(lock);
  } finally {
    closeSync(fd);
    unlinkSync(guard);
  }
}

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Writes lines, each ended by a newline, and fsyncs them before returning. */
function writeSynced(file: string, lines: readonly Buffer[], flag: 'w' | 'wx'): void {
  const fd = openSync(file, flag);
  try {
    writeFileSync(fd, Buffer.concat(lines.flatMap((l) => [l, NEWLINE])));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}
