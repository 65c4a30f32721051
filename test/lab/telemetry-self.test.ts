/**
 * Issue 19: bootherd's own metrics reach the head's InfluxDB (a real influxd
 * in the head namespace) as line protocol every telemetry.selfInterval.
 */
import t from 'tap';
import path from 'node:path';
import { startLabServer } from '../helpers/lab-server.ts';
import { createInfluxd, type Influxd } from '../helpers/influxd.ts';
import { readUntil, telemetryHeadConfig } from '../helpers/telemetry.ts';

const config = (state: string) => telemetryHeadConfig({ address: '198.18.0.1', state, telemetry: '{ selfInterval: 1, maxBackoff: 1 }' });

t.test('bootherd writes its own metrics to the InfluxDB', async (t) => {
  let influx: Influxd | undefined;
  await startLabServer(t, {
    tag: 'tself', config,
    before: async (lab, dir) => {
      influx = createInfluxd(lab, lab.head.ns, '127.0.0.1', path.join(dir, 'influxdb'));
      await influx.start();
    },
  });
  const rows = (): unknown[][] => {
    try { return influx!.rows('SELECT last("bootherd_telemetry_queue_points") FROM "prometheus" WHERE "host" = \'head\' AND "target" = \'influxdb\'', 'telegraf'); } catch { return []; }
  };
  const got = await readUntil(rows, (r) => r.length > 0, 120);
  t.equal(got.length, 1, 'a gauge of the relay is in InfluxDB, tagged with the head and its labels');
  t.type(got[0]?.[1], 'number');
});
