/**
 * GET /api/v1/status lists exactly the services the server built, under
 * their names: the names are written out here, so a renamed or forgotten
 * service changes the API only with a change to this test.
 */
import t from 'tap';
import { startHttpServer } from '../helpers/http-server.ts';

/** The service names GET /api/v1/status lists, with every service enabled or with DNS, NTP and TFTP off. */
async function statusServices(t: Parameters<typeof startHttpServer>[0], allServices: boolean): Promise<string[]> {
  const s = await startHttpServer(t, { allServices });
  const res = await s.authed('/api/v1/status');
  if (res.status !== 200) throw new Error(`/api/v1/status answered ${res.status}`);
  const body = (await res.json()) as { services: Record<string, unknown> };
  return Object.keys(body.services);
}

t.test('every service enabled: all seven, in start order', async (t) => {
  t.same(await statusServices(t, true), ['dhcp', 'tftp', 'dns', 'ntp', 'iscsi', 'telemetry', 'http']);
});

t.test('DNS, NTP and TFTP off: only the services built (iSCSI is always built and says why it is off)', async (t) => {
  const names = await statusServices(t, false);
  t.same(names, ['dhcp', 'iscsi', 'telemetry', 'http']);
});
