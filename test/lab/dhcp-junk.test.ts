/**
 * Junk over a real link: 100,000 seeded junk datagrams (random, and mutations
 * of recorded real packets) sent to port 67 from a lab namespace. The listener
 * survives, a real dhclient is served right after, and the junk itself wrote
 * nothing to the lease journal.
 */
import t from 'tap';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLabServer } from '../helpers/lab-server.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const FUZZ = path.resolve(here, '../helpers/udp-fuzz.ts');
const VECTORS = path.resolve(here, '../vectors/dhcp/recorded.json');

const config = (state: string) => `
head: { address: 198.18.0.1 }
state: ${state}
subnets:
  - { network: 198.18.0.0/24, interface: eth0, pool: 198.18.0.100-198.18.0.150 }
`;

t.test('junk datagrams do not hurt the listener', async (t) => {
  const s = await startLabServer(t, { tag: 'dj', clients: 2, clientCidr: (i) => (i === 0 ? '198.18.0.9/24' : undefined), config });
  const journalSize = () => {
    const dir = path.join(s.dir, 'state');
    return readdirSync(dir).filter((f) => f.startsWith('journal-')).reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
  };
  const before = journalSize();
  const r = s.lab.run(s.lab.clients[0]!.ns, process.execPath, ['--import', 'tsx', FUZZ, '--to', '198.18.0.1', '--port', '67', '--count', '100000', '--seed', '7', '--from-port', '68', '--vectors', VECTORS], 120_000);
  t.match(r.stdout, /sent 100000/, 'all junk sent');
  t.equal(s.proc.exitCode, null, 'bootherd is still running');
  const client = s.lab.clients[1]!;
  const d = s.lab.run(client.ns, 'dhclient', ['-1', '-lf', path.join(s.dir, 'c.leases'), '-pf', path.join(s.dir, 'c.pid'), '-sf', '/bin/true', 'eth0'], 30_000);
  t.equal(d.code, 0, 'a real client is served after the junk');
  // The client's own lease was written; mutated packets that happened to be well-formed DECLINEs may
  // add a quarantine record each. Pure junk adds nothing, so the journal grew by a few lines at most.
  const grown = journalSize() - before;
  t.ok(grown < 20 * 400, `journal grew by ${grown} bytes (the client's lease and any well-formed DECLINE/RELEASE)`);
});
