/**
 * `bootherd store migrate` from a single head's embedded state directory into
 * a real etcd (one member on loopback): the same nodes, hosts, SRV records,
 * leases (address, client, expiry) and boot timelines afterwards, read back by
 * a fresh etcd store; a second run is refused; the embedded store is left as it was.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedStore } from '../../src/store/embedded.ts';
import { EtcdClient } from '../../src/store/etcd-client.ts';
import { EtcdStore } from '../../src/store/etcd.ts';
import type { LeaseRecord } from '../../src/cluster/types.ts';
import { startEtcd } from '../helpers/etcd.ts';
import { BIN } from '../helpers/lab-server.ts';

const lease = (i: number): LeaseRecord => ({ ip: `198.18.0.${100 + i}`, mac: `52:54:00:00:05:${i.toString(16).padStart(2, '0')}`, hostname: `laptop${i}`, subnet: '198.18.0.0/24', state: 'bound', expiresAt: 2e12 + i, updatedAt: 1e12 });

t.test('nodes and leases keep their addresses through store migrate', async (t) => {
  const etcd = await startEtcd();
  t.teardown(() => etcd.close());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-migrate-'));
  const state = path.join(dir, 'state');
  const old = new EmbeddedStore(state);
  await old.open();
  for (let i = 1; i <= 40; i++) await old.put('leases', lease(i).ip, lease(i));
  await old.put('nodes', 'n050', { name: 'n050', macs: ['52:54:00:00:00:50'], ip: '198.18.0.50', profile: 'default', source: 'api' });
  await old.put('hosts', 'nas', { name: 'nas', ip: '198.18.0.70', source: 'api' });
  await old.put('srv', '_slurmctld._tcp/n050/6817', { name: '_slurmctld._tcp', target: 'n050', port: 6817, priority: 0, weight: 0, source: 'api' });
  await old.put('boots', 'n050', { node: 'n050', startedAt: 1e12, stages: [] });
  await old.close();

  const file = path.join(dir, 'cluster.yaml');
  writeFileSync(file, `
cluster: { name: grown, domain: lab.test }
head: { name: ha, address: 198.18.0.1 }
store: { kind: etcd, endpoints: [${etcd.endpoints.join(', ')}] }
state: ${state}
subnets: [{ network: 198.18.0.0/24 }]
`);
  const migrate = () => spawnSync(process.execPath, [BIN, 'store', 'migrate', '-c', file], { encoding: 'utf8', timeout: 60_000 });
  const r = migrate();
  t.equal(r.status, 0, `migrate succeeds: ${r.stdout}${r.stderr}`);
  t.match(r.stdout, /1 nodes, 1 hosts, 1 srv, 40 leases, 1 boots/, 'and says what it moved');

  const client = new EtcdClient({ endpoints: etcd.endpoints });
  const store = new EtcdStore({ client, cluster: 'grown' });
  await store.open();
  t.teardown(async () => { await store.close(); client.close(); });
  t.equal(store.size('leases'), 40, 'every lease is in etcd');
  t.same(store.get('leases', '198.18.0.117'), lease(17), 'a lease keeps its address, client, name and expiry');
  t.same(store.get('nodes', 'n050')?.ip, '198.18.0.50', 'an API-added node keeps its address');
  t.same(store.get('hosts', 'nas')?.ip, '198.18.0.70');
  t.equal(store.get('srv', '_slurmctld._tcp/n050/6817')?.port, 6817);
  t.equal(store.get('boots', 'n050')?.startedAt, 1e12, 'the boot timeline too');

  const again = migrate();
  t.equal(again.status, 1, 'a second run is refused');
  t.match(again.stderr, /already holds records .*--overwrite/, 'saying why and what to pass');

  const reopened = new EmbeddedStore(state);
  await reopened.open();
  t.equal(reopened.size('leases'), 40, 'the embedded store is left as it was');
  await reopened.close();
});
