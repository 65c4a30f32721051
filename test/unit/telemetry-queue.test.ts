/**
 * The telemetry relay's disk queue: order and cursor across a reopen, a torn
 * record at the end (a crash mid-append) cut off, the bound refusing what
 * does not fit, delivered segments deleted.
 */
import t from 'tap';
import { appendFileSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DiskQueue, encodeRecord } from '../../src/services/telemetry/queue.ts';

const meta = (points: number) => ({ precision: 's' as const, acceptedAt: Date.now(), points });
const rec = (text: string) => encodeRecord({ ...meta(1), payload: Buffer.from(text) });

t.test('order and cursor survive a reopen', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tq-'));
  const q = new DiskQueue(dir, 1 << 20);
  q.open();
  for (let i = 0; i < 5; i++) await q.append(rec(`m v=${i} ${i}\n`), meta(1));
  t.same(q.take(1 << 20).map((b) => b.payload.toString()), [0, 1, 2, 3, 4].map((i) => `m v=${i} ${i}\n`));
  q.ack(2);
  q.close();
  const again = new DiskQueue(dir, 1 << 20);
  again.open();
  t.equal(again.depthBatches, 3);
  t.equal(again.depthPoints, 3);
  t.same(again.take(1 << 20).map((b) => b.payload.toString()), [2, 3, 4].map((i) => `m v=${i} ${i}\n`), 'what was not acknowledged, in order');
  again.close();
});

t.test('several takes out at once: each gets the next batches; only an acknowledged prefix leaves', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tq-'));
  const q = new DiskQueue(dir, 1 << 20);
  q.open();
  for (let i = 0; i < 6; i++) await q.append(rec(`m v=${i} ${i}\n`), meta(1));
  const size = rec('m v=0 0\n').length;
  const first = q.take(size * 2).map((b) => b.payload.toString());
  const second = q.take(size * 2).map((b) => b.payload.toString());
  t.same([first, second], [['m v=0 0\n', 'm v=1 1\n'], ['m v=2 2\n', 'm v=3 3\n']], 'POSTs get batches in order, none twice');
  t.equal(q.untaken, 2);
  q.ack(2); // the first POST answered; the second not yet
  t.equal(q.depthBatches, 4, 'taken but unanswered batches are still queued');
  t.same(q.take(1 << 20).map((b) => b.payload.toString()), ['m v=4 4\n', 'm v=5 5\n'], 'a take goes on after what is out');
  q.close();
  const again = new DiskQueue(dir, 1 << 20);
  again.open();
  t.same(again.take(1 << 20).map((b) => b.payload.toString()), [2, 3, 4, 5].map((i) => `m v=${i} ${i}\n`), 'after a restart, everything past the answered prefix is sent again');
  again.close();
});

t.test('a torn record at the end is cut off, and appending goes on after it', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tq-'));
  const q = new DiskQueue(dir, 1 << 20);
  q.open();
  await q.append(rec('a v=1 1\n'), meta(1));
  q.close();
  const seg = path.join(dir, readdirSync(dir).find((f) => f.endsWith('.seg'))!);
  const whole = statSync(seg).size;
  appendFileSync(seg, rec('b v=2 2\n').subarray(0, 15));
  const again = new DiskQueue(dir, 1 << 20);
  again.open();
  t.equal(again.depthBatches, 1, 'the torn record is not delivered');
  t.equal(statSync(seg).size, whole, 'and is cut off');
  await again.append(rec('c v=3 3\n'), meta(1));
  t.same(again.take(1 << 20).map((b) => b.payload.toString()), ['a v=1 1\n', 'c v=3 3\n']);
  again.close();
});

t.test('the bound refuses a batch that does not fit; delivering makes room', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tq-'));
  const one = rec('x'.repeat(1000));
  const q = new DiskQueue(dir, one.length * 3);
  q.open();
  for (let i = 0; i < 3; i++) t.ok(await q.append(one, meta(1)) === undefined, `batch ${i} queued`);
  t.equal(q.append(one, meta(1)), false, 'the fourth does not fit');
  t.equal(q.depthBatches, 3);
  q.ack(1);
  t.not(q.append(one, meta(1)), false, 'room again after a delivery');
  q.close();
});

t.test('segments rotate while fsyncs are running, and delivered ones are deleted', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tq-'));
  const q = new DiskQueue(dir, 64 << 20);
  q.open();
  const big = rec('y'.repeat(1 << 20));
  // Not awaited one by one: every append after the first finds an fsync running.
  const pending: Array<Promise<void> | false> = [];
  for (let i = 0; i < 20; i++) pending.push(q.append(big, meta(1)));
  await Promise.all(pending);
  const segments = () => readdirSync(dir).filter((f) => f.endsWith('.seg')).length;
  t.ok(segments() >= 2, `${segments()} segments for 20 MiB`);
  while (q.depthBatches) q.ack(q.take(4 << 20).length);
  // The cursor is written and segments deleted in libuv's threads: wait for it (bounded).
  for (let i = 0; i < 200 && segments() > 1; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(segments(), 1, 'only the segment being written is left');
  q.close();
  const again = new DiskQueue(dir, 64 << 20);
  again.open();
  t.equal(again.depthBatches, 0, 'nothing comes back after a reopen');
  again.close();
});
