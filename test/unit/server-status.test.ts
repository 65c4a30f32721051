/**
 * GET /api/v1/status lists exactly the services the server built, under
 * their names: the names are written out here, so a renamed or forgotten
 * service changes the API only with a change to this test.
 */
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { Server } from '../../src/server.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { freePort } from '../helpers/http-server.ts';

interface Teardownable { teardown(fn: () => unknown): void }

/** A server with the given sections, built (no socket bound) and only its HTTP service listening on loopback. */
async function statusServices(t: Teardownable, sections: string): Promise<string[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-status-'));
  const port = await freePort();
  const yaml = `
cluster: { name: test, domain: lab.test }
head: { name: head, address: 198.18.0.1 }
state: ${path.join(dir, 'state')}
files: ${dir}
subnets:
  - network: 198.18.0.0/24
    pool: 198.18.0.100-198.18.0.150
http: { address: 127.0.0.1, port: ${port}, baseUrl: "http://127.0.0.1:${port}" }
${sections}
`;
  const server = new Server(parseConfig(yaml, path.join(dir, 'cluster.yaml')), { log: silentLogger, store: new MemoryStore() });
  await server.open();
  await server.http!.start();
  t.teardown(() => server.stop());
  const token = readFileSync(path.join(dir, 'state', 'api-token'), 'utf8').trim();
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/status`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(15_000) });
  if (res.status !== 200) throw new Error(`/api/v1/status answered ${res.status}`);
  const body = (await res.json()) as { services: Record<string, unknown> };
  return Object.keys(body.services);
}

t.test('every service enabled: all six, in start order', async (t) => {
  t.same(await statusServices(t, ''), ['dhcp', 'tftp', 'dns', 'ntp', 'iscsi', 'http']);
});

t.test('DNS, NTP and TFTP off: only the services built (iSCSI is always built and says why it is off)', async (t) => {
  const names = await statusServices(t, 'dns: { enabled: false }\nntp: { enabled: false }\ntftp: { enabled: false }');
  t.same(names, ['dhcp', 'iscsi', 'http']);
});
