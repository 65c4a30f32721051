/**
 * The served clock: the monotonic clock anchored to the system clock. The
 * bounds are accuracy bounds (how far from Date.now()), not timing ones.
 */
import t from 'tap';
import { measureAnchor, measurePrecision, NTP_UNIX_OFFSET, SystemClock } from '../../src/services/ntp/clock.ts';
import { timestamp, timestampDiff } from '../../protocols/ntp/codec.ts';

t.test('the anchored clock agrees with Date.now() to within its millisecond', async (t) => {
  const clock = new SystemClock();
  for (let i = 0; i < 1000; i++) {
    const system = Date.now();
    const ours = clock.toUnixMs(clock.read());
    // Date.now() truncates and was read first: ours is 0-1 ms ahead, plus the gap between the reads.
    if (!(ours - system >= -0.05 && ours - system < 5)) { t.fail(`ours ${ours} vs Date.now() ${system}`); return; }
  }
  t.pass('1000 comparisons in range');
  t.ok(clock.anchorError < 0.001, `anchor uncertainty ${clock.anchorError} s`);
  t.equal(clock.checkStep(), undefined, 'no step when the system clock was not stepped');
});

t.test('NTP conversion', async (t) => {
  const clock = new SystemClock();
  const a = clock.toNtp(clock.read(), timestamp());
  const unix = (a.seconds - NTP_UNIX_OFFSET) * 1000;
  t.ok(Math.abs(unix - Date.now()) < 2000, 'NTP seconds are Unix seconds + 2208988800');
  const r = clock.read();
  const x = clock.toNtp(r, timestamp());
  const y = clock.toNtp(r + 1.5, timestamp());
  t.ok(Math.abs(timestampDiff(y, x) - 0.0015) < 1e-9, 'readings convert linearly, to the nanosecond');
  t.ok(x.fraction >= 0 && x.fraction <= 0xffffffff && Number.isInteger(x.fraction), 'fraction is a uint32');
});

t.test('kernel timestamps are taken when plausible', async (t) => {
  const clock = new SystemClock();
  const r = clock.read();
  const unixMs = clock.toUnixMs(r) - 0.25; // arrived 250 µs before we looked
  const kernel = new Float64Array([Math.floor(unixMs / 1000), Math.round((unixMs % 1000) * 1e6)]);
  const into = timestamp();
  t.ok(clock.kernelToNtp(kernel, r, into), 'a stamp from just before the reading is used');
  t.ok(Math.abs(timestampDiff(clock.toNtp(r, timestamp()), into) - 0.00025) < 2e-6, 'and converted exactly');
  t.notOk(clock.kernelToNtp(new Float64Array([kernel[0]! + 10, 0]), r, into), 'one from the future is not');
  t.notOk(clock.kernelToNtp(new Float64Array([kernel[0]! - 10, 0]), r, into), 'nor one from long ago');
});

t.test('anchor and precision measurements', async (t) => {
  const a = measureAnchor();
  t.ok(a.errorMs < 1, `the tick is caught within ${a.errorMs} ms`);
  const p = measurePrecision();
  t.ok(p <= -10 && p >= -32, `precision 2^${p} s`);
});
