import t from 'tap';
import { checkBatch } from '../../protocols/influx/line-protocol.ts';
import { Metrics } from '../../src/metrics.ts';
import { metricsAsLineProtocol } from '../../src/services/telemetry/self-metrics.ts';

t.test('bootherd\'s metrics as line protocol that passes the ingest check', async (t) => {
  const m = new Metrics();
  m.counter('bootherd_dhcp_packets_total', 'x').with({ type: 'discover' }).value = 7;
  m.counter('bootherd_http_dropped_total', 'x').with({ reason: 'bad http, "quoted"' }).value = 2;
  m.gaugeFn('bootherd_http_event_clients', 'x', () => 3);
  const { body, points } = metricsAsLineProtocol(m, 'head 1', 1_700_000_000_000_000_000n);
  t.equal(points, 3);
  t.equal(body, [
    'prometheus,host=head\\ 1,type=discover bootherd_dhcp_packets_total=7 1700000000000000000',
    'prometheus,host=head\\ 1,reason=bad\\ http\\,\\ _quoted_ bootherd_http_dropped_total=2 1700000000000000000',
    'prometheus,host=head\\ 1 bootherd_http_event_clients=3 1700000000000000000',
  ].join('\n') + '\n');
  const checked = checkBatch(body, 'ns');
  t.ok(checked.ok && checked.points === 3, JSON.stringify(checked));
});
