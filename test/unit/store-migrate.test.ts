/** store migrate's copy: every record under its own key, and no silent overwrite of a store that holds records. */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedStore } from '../../src/store/embedded.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { migrateStore } from '../../src/store/migrate.ts';
import type { LeaseRecord, NodeRecord } from '../../src/cluster/types.ts';

const lease = (i: number): LeaseRecord => ({ ip: `198.18.1.${i}`, mac: `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`, subnet: '198.18.1.0/24', state: 'bound', expiresAt: 1e12 + i, updatedAt: 1 });
const node = (i: number): NodeRecord => ({ name: `n${i}`, macs: [`52:54:00:00:02:${i.toString(16).padStart(2, '0')}`], ip: `198.18.2.${i}`, profile: 'default', source: 'api' });

t.test('copies every collection, more records than one transaction holds', async (t) => {
  const from = new EmbeddedStore(mkdtempSync(path.join(os.tmpdir(), 'bootherd-migrate-')));
  await from.open();
  t.teardown(() => from.close());
  for (let i = 1; i <= 250; i++) await from.put('leases', lease(i).ip, lease(i));
  for (let i = 1; i <= 3; i++) await from.put('nodes', node(i).name, node(i));
  await from.put('hosts', 'db', { name: 'db', ip: '198.18.3.1', source: 'api' });
  await from.put('srv', '_x._tcp/db/1', { name: '_x._tcp', target: 'db', port: 1, priority: 0, weight: 0, source: 'api' });
  await from.put('boots', 'n1', { node: 'n1', startedAt: 5, stages: [] });
  await from.put('addresses', 'p1', { node: 'p1', ip: '198.18.4.7', from: 'pxe-request', at: 6 });
  const to = new MemoryStore();
  const counts = await migrateStore(from, to);
  t.same(counts, { nodes: 3, hosts: 1, srv: 1, leases: 250, boots: 1, addresses: 1 });
  t.same(to.get('addresses', 'p1')?.ip, '198.18.4.7', 'a learned address (proxy subnet) too');
  t.same(to.get('leases', '198.18.1.200'), lease(200), 'a lease keeps its address, client and expiry');
  t.same(to.get('nodes', 'n2'), node(2));
  t.same(to.get('srv', '_x._tcp/db/1')?.port, 1, 'under the same key');
  t.equal(to.get('boots', 'n1')?.startedAt, 5);

  await t.rejects(migrateStore(from, to), { name: 'MigrationRefused' }, 'a second run into a store that holds records is refused');
  await t.rejects(migrateStore(from, to), /already holds records \(3 nodes, 1 hosts, 1 srv, 250 leases, 1 boots, 1 addresses\).*--overwrite/);
  await to.put('leases', lease(1).ip, { ...lease(1), expiresAt: 7 });
  t.same(await migrateStore(from, to, { overwrite: true }), counts, '--overwrite puts them over');
  t.equal(to.get('leases', lease(1).ip)?.expiresAt, lease(1).expiresAt);
});
