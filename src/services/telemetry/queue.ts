/**
 * One delivery target's queue on disk: <state>/telemetry/<target>/ holds
 * append-only segment files (000000000001.seg, ...) and a `cursor` file
 * naming the first record not yet delivered. A batch is appended and fsynced
 * before its writer gets 204 (fsyncs of batches arriving together are
 * shared); a torn record at the end of the last segment (a crash mid-append)
 * is cut off when the queue opens. Delivered segments are deleted.
 *
 * Record: u32 payload length, u32 CRC-32 of the rest, u8 precision, f64
 * accepted-at (ms since the epoch), u32 points, payload (line protocol).
 */
import { closeSync, fsync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rename, renameSync, statSync, unlink, unlinkSync, writeFile, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { Precision } from '../../../protocols/influx/line-protocol.ts';

const PRECISIONS: readonly Precision[] = ['ns', 'us', 'ms', 's', 'm', 'h'];
const HEADER = 21;
/** A new segment is started past this size; whole segments are deleted once delivered. */
const SEGMENT_BYTES = 8 << 20;
/** Bytes of records a queue keeps in memory for its sender (shared by every queue a batch went to); past it, reads from disk. */
const MEMORY_BYTES = 32 << 20;
/** The cursor file is rewritten at most this often (ms) while deliveries go on. */
const CURSOR_EVERY_MS = 200;

export interface QueuedBatch {
  readonly precision: Precision;
  readonly acceptedAt: number;
  readonly points: number;
  readonly payload: Buffer;
}

interface Entry {
  readonly segment: number; readonly offset: number; readonly size: number; readonly precision: Precision; readonly acceptedAt: number; readonly points: number;
  /** The record as appended, kept while the queue's memory bound allows: the sender reads it from here, not from disk. */
  record?: Buffer | undefined;
}

/** A record as appended to every target's queue (encoded once per batch). */
export function encodeRecord(b: QueuedBatch): Buffer {
  const out = Buffer.allocUnsafe(HEADER + b.payload.length);
  out.writeUInt32LE(b.payload.length, 0);
  out.writeUInt8(PRECISIONS.indexOf(b.precision), 8);
  out.writeDoubleLE(b.acceptedAt, 9);
  out.writeUInt32LE(b.points, 17);
  b.payload.copy(out, HEADER);
  out.writeUInt32LE(crc32(out.subarray(8)), 4);
  return out;
}

const segName = (n: number): string => `${String(n).padStart(12, '0')}.seg`;

export class DiskQueue {
  private readonly entries: Entry[] = [];
  /** Index in `entries` of the first record not yet delivered. */
  private head = 0;
  /** Index in `entries` of the first record not yet taken by the sender (head <= taken). */
  private taken = 0;
  /** Lowest segment number whose file may still exist (deleted once the cursor passes it). */
  private oldestSegment = 1;
  private bytes = 0;
  /** Bytes of `record`s held by entries not yet delivered. */
  private memoryBytes = 0;
  private points = 0;
  private writeSegment = 1;
  private writeFd = -1;
  private writeSize = 0;
  private readonly readFds = new Map<number, number>();
  private syncing = false;
  /** Segments rotated out whose last writes are not yet fsynced. */
  private readonly rotatedOut: number[] = [];
  /** When the cursor file was last written (ms), and whether it is behind the delivered prefix. */
  private cursorWrittenAt = 0;
  private cursorBehind = false;
  private cursorWriting = false;
  private cursorWanted: { segment: number; offset: number } | undefined;
  private closed = false;
  private waiters: Array<(e: Error | null) => void> = [];
  private wakeup: (() => void) | undefined;

  constructor(readonly dir: string, private readonly maxBytes: number) {}

  /** Opens the directory: finds the cursor, indexes what is left, cuts a torn tail. */
  open(): void {
    mkdirSync(this.dir, { recursive: true });
    const segments = readdirSync(this.dir).filter((f) => /^\d{12}\.seg$/.test(f)).map((f) => Number(f.slice(0, 12))).sort((a, b) => a - b);
    let cursor = { segment: segments[0] ?? 1, offset: 0 };
    try {
      const c = JSON.parse(readFileSync(path.join(this.dir, 'cursor'), 'utf8')) as { segment?: unknown; offset?: unknown };
      if (typeof c.segment === 'number' && typeof c.offset === 'number') cursor = { segment: c.segment, offset: c.offset };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${path.join(this.dir, 'cursor')}: ${(e as Error).message}`);
    }
    this.oldestSegment = cursor.segment;
    for (const seg of segments) {
      if (seg < cursor.segment) { unlinkSync(path.join(this.dir, segName(seg))); continue; }
      this.index(seg, seg === cursor.segment ? cursor.offset : 0, seg === segments[segments.length - 1]);
    }
    this.writeSegment = segments.length ? Math.max(segments[segments.length - 1]!, cursor.segment) : cursor.segment;
    this.openWrite();
  }

  /** Reads the record headers of one segment from `from`; a bad record ends it (cut off when it is the last segment). */
  private index(seg: number, from: number, last: boolean): void {
    const file = path.join(this.dir, segName(seg));
    const data = readFileSync(file);
    let at = from;
    while (at + HEADER <= data.length) {
      const len = data.readUInt32LE(at);
      if (at + HEADER + len > data.length) break;
      const rec = data.subarray(at, at + HEADER + len);
      if (crc32(rec.subarray(8)) !== rec.readUInt32LE(4)) break;
      const precision = PRECISIONS[rec.readUInt8(8)];
      if (!precision) break;
      this.push({ segment: seg, offset: at, size: HEADER + len, precision, acceptedAt: rec.readDoubleLE(9), points: rec.readUInt32LE(17) });
      at += HEADER + len;
    }
    if (at < data.length && last) {
      const fd = openSync(file, 'r+');
      try { ftruncateSync(fd, at); fsyncSync(fd); } finally { closeSync(fd); }
    }
  }

  private push(e: Entry): void {
    this.entries.push(e);
    this.bytes += e.size;
    this.points += e.points;
  }

  private openWrite(): void {
    const file = path.join(this.dir, segName(this.writeSegment));
    this.writeFd = openSync(file, 'a');
    this.writeSize = statSync(file).size;
  }

  get depthBatches(): number { return this.entries.length - this.head; }
  get depthPoints(): number { return this.points; }
  get depthBytes(): number { return this.bytes; }
  /** Accept time (ms) of the oldest batch waiting, or undefined when empty. */
  get oldestAcceptedAt(): number | undefined { return this.entries[this.head]?.acceptedAt; }

  /**
   * Appends an encoded record; resolves once it is on disk. Returns false
   * (nothing written) when the queue would grow past its bound.
   */
  append(record: Buffer, meta: Pick<QueuedBatch, 'precision' | 'acceptedAt' | 'points'>): Promise<void> | false {
    if (this.bytes + record.length > this.maxBytes) return false;
    if (this.writeSize >= SEGMENT_BYTES) this.rotate();
    let off = 0;
    while (off < record.length) off += writeSync(this.writeFd, record, off, record.length - off);
    const keep = this.memoryBytes + record.length <= MEMORY_BYTES;
    if (keep) this.memoryBytes += record.length;
    this.push({ segment: this.writeSegment, offset: this.writeSize, size: record.length, ...meta, record: keep ? record : undefined });
    this.writeSize += record.length;
    this.wakeup?.();
    return new Promise((resolve, reject) => {
      this.waiters.push((e) => (e ? reject(e) : resolve()));
      if (!this.syncing) this.sync();
    });
  }

  private sync(): void {
    this.syncing = true;
    const waiting = this.waiters;
    this.waiters = [];
    // The segment being written and any rotated out since the last fsync (their last writes are covered too).
    const old = this.rotatedOut.splice(0);
    const fds = [...old, this.writeFd];
    let left = fds.length;
    let error: Error | null = null;
    for (const fd of fds) {
      fsync(fd, (e) => {
        error ??= e;
        if (--left) return;
        this.syncing = false;
        for (const fd of old) closeSync(fd);
        for (const w of waiting) w(error);
        if (this.waiters.length) this.sync();
      });
    }
  }

  /**
   * Starts the next segment. The old one is fsynced (and closed) by the next
   * sync(), which every write to it is waiting for, so no fsync blocks here.
   */
  private rotate(): void {
    this.rotatedOut.push(this.writeFd);
    this.writeSegment++;
    this.openWrite();
  }

  /** Batches queued and not yet taken by the sender. */
  get untaken(): number { return this.entries.length - this.taken; }

  /** Waits until something not yet taken is queued (at once when something is). */
  async waitForData(): Promise<void> {
    if (this.untaken > 0) return;
    await new Promise<void>((r) => { this.wakeup = () => { this.wakeup = undefined; r(); }; });
  }

  /** Wakes a waitForData() (stopping). */
  interrupt(): void { this.wakeup?.(); }

  /**
   * The oldest batches not yet taken, of one precision, up to `maxBytes` of
   * payload (at least one), read from disk; they stay queued until ack().
   * Several takes may be out at once (several POSTs in flight).
   */
  take(maxBytes: number): QueuedBatch[] {
    const out: QueuedBatch[] = [];
    let size = 0;
    for (let i = this.taken; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (out.length && (e.precision !== out[0]!.precision || size + e.size > maxBytes)) break;
      out.push({ precision: e.precision, acceptedAt: e.acceptedAt, points: e.points, payload: e.record ? e.record.subarray(HEADER) : this.read(e) });
      size += e.size;
    }
    this.taken += out.length;
    return out;
  }

  private read(e: Entry): Buffer {
    let fd = this.readFds.get(e.segment);
    if (fd === undefined) { fd = openSync(path.join(this.dir, segName(e.segment)), 'r'); this.readFds.set(e.segment, fd); }
    const len = e.size - HEADER;
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = readSync(fd, buf, got, len - got, e.offset + HEADER + got);
      if (n === 0) throw new Error(`${segName(e.segment)}: record at ${e.offset} is cut short`);
      got += n;
    }
    return buf;
  }

  /**
   * Marks the `count` oldest batches delivered (taken or not): moves the
   * cursor, deletes segments left behind.
   */
  ack(count: number): void {
    for (let k = 0; k < count && this.head < this.entries.length; k++) {
      const e = this.entries[this.head++]!;
      this.bytes -= e.size;
      this.points -= e.points;
      if (e.record) { this.memoryBytes -= e.size; e.record = undefined; }
    }
    if (this.taken < this.head) this.taken = this.head;
    const next = this.entries[this.head];
    const cursor = next ? { segment: next.segment, offset: next.offset } : { segment: this.writeSegment, offset: this.writeSize };
    // Keep the index small: forget delivered entries in chunks.
    if (this.head > 4096 || this.head === this.entries.length) { this.entries.splice(0, this.head); this.taken -= this.head; this.head = 0; }
    // The cursor file is written at most every CURSOR_EVERY_MS (a crash sends the batches delivered since again:
    // InfluxDB keeps one point per series and time), and always when it leaves a segment (which is then deleted).
    const now = Date.now();
    if (now - this.cursorWrittenAt < CURSOR_EVERY_MS && cursor.segment <= this.oldestSegment) { this.cursorBehind = true; return; }
    this.cursorWrittenAt = now;
    this.cursorBehind = false;
    for (const [seg, fd] of this.readFds) {
      if (seg < cursor.segment) { closeSync(fd); this.readFds.delete(seg); }
    }
    this.persistCursor(cursor);
  }

  /**
   * Writes the cursor file off the main thread (a rename or unlink waits on
   * the file system's journal behind the fsyncs: 0.5 ms and more each), one
   * write at a time, the newest cursor winning; segments behind a cursor
   * are deleted once that cursor is on disk.
   */
  private persistCursor(cursor: { segment: number; offset: number }): void {
    this.cursorWanted = cursor;
    if (this.cursorWriting) return;
    this.cursorWriting = true;
    this.cursorWanted = undefined;
    const tmp = path.join(this.dir, 'cursor.async-tmp');
    const done = (e: Error | null): void => {
      this.cursorWriting = false;
      if (e) { this.cursorBehind = true; return; } // tried again on the next ack or at close()
      for (; this.oldestSegment < cursor.segment; this.oldestSegment++) unlink(path.join(this.dir, segName(this.oldestSegment)), () => { /* gone already: fine */ });
      if (this.cursorWanted && !this.closed) this.persistCursor(this.cursorWanted);
    };
    writeFile(tmp, JSON.stringify(cursor), (e) => {
      // After close() wrote the cursor itself, a late write here must not replace it.
      if (e || this.closed) return done(e);
      rename(tmp, path.join(this.dir, 'cursor'), done);
    });
  }

  private writeCursor(cursor: { segment: number; offset: number }): void {
    const tmp = path.join(this.dir, 'cursor.tmp');
    writeFileSync(tmp, JSON.stringify(cursor));
    renameSync(tmp, path.join(this.dir, 'cursor'));
  }

  close(): void {
    this.closed = true;
    for (const fd of this.rotatedOut.splice(0)) { try { fsyncSync(fd); } catch { /* closing anyway */ } closeSync(fd); }
    // The cursor as it is now, whatever an asynchronous write still out says (that one will not rename).
    if (this.cursorBehind || this.cursorWriting || this.cursorWanted) {
      const next = this.entries[this.head];
      this.writeCursor(next ? { segment: next.segment, offset: next.offset } : { segment: this.writeSegment, offset: this.writeSize });
    }
    if (this.writeFd >= 0) { try { fsyncSync(this.writeFd); } catch { /* closing anyway */ } closeSync(this.writeFd); this.writeFd = -1; }
    for (const fd of this.readFds.values()) closeSync(fd);
    this.readFds.clear();
  }
}
