/**
 * The cluster page's request rates: per-second rates between samples of the
 * head's own counters (summed over labels), the last one up to now, and the
 * bounded history; Metrics.total and snapshot behind them and the services page.
 */
import t from 'tap';
import { Metrics } from '../../src/metrics.ts';
import { RATE_COUNTERS, RequestRates } from '../../src/services/http/cluster-view.ts';

t.test('rates between samples, summed over labels, the last interval ending now', async (t) => {
  const m = new Metrics();
  const dhcp = m.counter(RATE_COUNTERS.dhcp, 'DHCP received').by('type');
  const http = m.counter(RATE_COUNTERS.http, 'HTTP answered');
  let now = 1_000_000;
  const rates = new RequestRates(m, 5000, 3, () => now);
  rates.sample();
  dhcp('DISCOVER').value += 10;
  dhcp('REQUEST').value += 10;
  now += 5000;
  rates.sample();
  http.with({ kind: 'api', code: '200' }).value += 4;
  now += 2000;
  const points = rates.points();
  t.same(points.map((p) => p.at), [1_005_000, 1_007_000], 'one point per interval, the last ending now');
  t.equal(points[0]!.perSecond.dhcp, 4, '20 DHCP messages (two types) in 5 s: 4/s');
  t.equal(points[1]!.perSecond.dhcp, 0);
  t.equal(points[1]!.perSecond.http, 2, '4 HTTP requests in 2 s: 2/s');
  t.equal(points[0]!.perSecond.tftp, 0, 'a protocol whose service is off: 0, not missing');

  rates.sample();
  now += 500;
  t.same(rates.points().map((p) => p.at), [1_005_000, 1_007_000], 'less than a second after the last sample: no point for now');
  for (let i = 0; i < 5; i++) { now += 5000; rates.sample(); }
  t.equal(rates.points().length, 2, 'the history keeps its last 3 samples');
});

t.test('Metrics.total and snapshot', async (t) => {
  const m = new Metrics();
  const f = m.counter('a_total', 'a');
  f.with({ x: '1' }).value = 2;
  f.with({ x: '2' }).value = 3;
  let g = 7;
  m.gaugeFn('b', 'b', () => g);
  t.equal(m.total('a_total'), 5, 'summed over labels');
  t.equal(m.total('missing_total'), 0, 'no family: 0');
  g = 9;
  const snap = m.snapshot();
  t.same(snap.map((s) => [s.name, s.type, s.series.map((x) => x.value)]), [['a_total', 'counter', [2, 3]], ['b', 'gauge', [9]]], 'every family, gauges computed now');
});
