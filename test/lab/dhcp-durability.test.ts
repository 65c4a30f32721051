/**
 * kill -9 in the middle of a lease storm loses no acknowledged lease and
 * hands out no address twice. A load client prints every ACK the moment it
 * arrives; the server is SIGKILLed mid-run; after restart, every ACKed
 * (MAC, address) pair is in the lease store, and the same clients asking again
 * get the same addresses, with no address given to two MACs.
 */
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { EmbeddedStore } from '../../src/store/embedded.ts';
import { startLabServer } from '../helpers/lab-server.ts';

const LOAD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/dhcp-load.ts');

const config = (state: string) => `
cluster: { domain: lab.test }
head: { address: 198.18.0.1 }
state: ${state}
log: { level: info }
subnets:
  - network: 198.18.0.0/16
    interface: eth0
    pool: 198.18.1.0-198.18.200.255
`;

function collect(child: ChildProcess, onAck?: (n: number) => void): { acks: Map<string, string>; done: Promise<void> } {
  const acks = new Map<string, string>();
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const [kind, mac, ip] = buf.slice(0, nl).split(' ');
      buf = buf.slice(nl + 1);
      if (kind === 'ACK') { acks.set(mac!, ip!); onAck?.(acks.size); }
    }
  });
  return { acks, done: new Promise((r) => child.once('exit', () => r())) };
}

t.test('no acknowledged lease is lost to SIGKILL', async (t) => {
  const s = await startLabServer(t, { tag: 'du', clients: 1, clientCidr: () => '198.18.0.9/16', headCidr: '198.18.0.1/16', config });
  const ns = s.lab.clients[0]!.ns;
  const load = (count: number, macBase: number) => s.lab.spawn(ns, process.execPath, ['--import', 'tsx', LOAD, '--server', '198.18.0.1', '--relay', '198.18.0.9', '--count', String(count), '--concurrency', '64', '--mac-base', String(macBase)]);

  // 1. A storm of 6,000 clients; kill the server once 1,500 have been acknowledged.
  const storm = load(6000, 1);
  let killed = false;
  const first = collect(storm, (n) => {
    if (n >= 1500 && !killed) { killed = true; void s.kill9(); }
  });
  const timeout = setTimeout(() => storm.kill('SIGKILL'), 60_000);
  while (!killed) await new Promise((r) => setTimeout(r, 50));
  await s.kill9();
  await new Promise((r) => setTimeout(r, 300)); // let in-flight ACKs arrive
  storm.kill('SIGTERM');
  await first.done;
  clearTimeout(timeout);
  const acked = first.acks;
  t.ok(acked.size >= 1500, `${acked.size} leases acknowledged before the kill`);

  // 2. Every acknowledged lease is in the state directory.
  const store = new EmbeddedStore(path.join(s.dir, 'state'));
  await store.open();
  let missing = 0;
  for (const [mac, ip] of acked) {
    const lease = store.get('leases', ip);
    if (!lease || lease.mac !== mac || lease.state !== 'bound') missing++;
  }
  const stored = store.size('leases');
  await store.close();
  t.equal(missing, 0, `all ${acked.size} acknowledged leases survived (store holds ${stored})`);

  // 3. After a restart the same clients get the same addresses, and new ones get fresh addresses.
  await s.start();
  // One after the other: both load clients bind the relay address's port 67.
  const second = collect(load(2000, 1));
  await second.done;
  const third = collect(load(500, 2));
  await third.done;
  let moved = 0;
  for (const [mac, ip] of second.acks) if (acked.has(mac) && acked.get(mac) !== ip) moved++;
  t.equal(moved, 0, 'returning clients keep their addresses');
  const owners = new Map<string, string>();
  let duplicates = 0;
  for (const acks of [acked, second.acks, third.acks]) {
    for (const [mac, ip] of acks) {
      const owner = owners.get(ip);
      if (owner && owner !== mac) duplicates++;
      owners.set(ip, mac);
    }
  }
  t.equal(duplicates, 0, `no address handed to two MACs (${owners.size} addresses)`);
  t.equal(third.acks.size, 500, 'newcomers are all served');
});
