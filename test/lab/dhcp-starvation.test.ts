/**
 * Starvation by a real client set: Kea's perfdhcp plays 115 MACs behind one
 * relay port (giaddr = its address, option 82 circuit id "port01") against a
 * pool of 40. Without dhcp.limits the pool empties; with `perPort` the port
 * gets its share and a real client (busybox udhcpc) on the segment is served.
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startLabServer, type LabServer } from '../helpers/lab-server.ts';

const POOL = 40;
const config = (limits: string) => (state: string) => `
head: { name: head, address: 198.18.0.1 }
state: ${state}
${limits ? `dhcp: { limits: { ${limits} } }` : ''}
subnets:
  - { network: 198.18.0.0/24, interface: eth0, router: 198.18.0.1, pool: 198.18.0.100-198.18.0.139, leaseTime: 1h }
`;
/** Option 82 with sub-option 1 (circuit id) "port01", as a switch would add it. */
const AGENT = `82,0106${Buffer.from('port01').toString('hex')}`;

/** Bound leases in the state directory's journal, by address (the last record of each address counts). */
function boundLeases(s: LabServer): Array<{ ip: string; circuitId?: string }> {
  const dir = path.join(s.dir, 'state');
  const last = new Map<string, { ip: string; state: string; expiresAt: number; circuitId?: string }>();
  for (const f of readdirSync(dir).filter((n) => n.startsWith('journal-'))) {
    for (const line of readFileSync(path.join(dir, f), 'utf8').split('\n')) {
      if (!line.startsWith('{"c":"leases"')) continue;
      const r = JSON.parse(line) as { k: string; v?: { ip: string; state: string; expiresAt: number; circuitId?: string } };
      if (r.v) last.set(r.k, r.v); else last.delete(r.k);
    }
  }
  return [...last.values()].filter((l) => l.state === 'bound' && l.expiresAt > Date.now());
}

/** 115 MACs, 60 DORA/s for up to 6 s, through one relay port. */
function flood(s: LabServer): void {
  s.lab.run(s.lab.clients[0]!.ns, 'perfdhcp', ['-4', '-l', 'eth0', '-R', '115', '-r', '60', '-p', '6', '-o', AGENT, '198.18.0.1'], 30_000);
}

const lab = { clients: 2, clientMac: (i: number) => `52:54:00:00:05:0${i + 1}`, clientCidr: (i: number) => (i === 0 ? '198.18.0.9/24' : undefined) };

t.test('without dhcp.limits, 115 MACs behind one relay port take the whole pool', async (t) => {
  const s = await startLabServer(t, { tag: 'sv0', ...lab, config: config('') });
  flood(s);
  await new Promise((r) => setTimeout(r, 300));
  t.equal(boundLeases(s).length, POOL, 'every pool address is bound to the flood');
});

t.test('with dhcp.limits.perPort, the port gets its share and a real client is still served', async (t) => {
  const s = await startLabServer(t, { tag: 'sv1', ...lab, config: config('perPort: 4') });
  flood(s);
  await new Promise((r) => setTimeout(r, 300));
  const bound = boundLeases(s);
  t.equal(bound.length, 4, 'four leases for the port');
  t.same([...new Set(bound.map((l) => l.circuitId))], [Buffer.from('port01').toString('hex')], 'recorded with their circuit id');
  const r = s.lab.run(s.lab.clients[1]!.ns, 'udhcpc', ['-i', 'eth0', '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', '/bin/true'], 30_000);
  t.match(r.stderr, /lease of 198\.18\.0\.1\d\d obtained/, 'udhcpc on the segment gets a pool address');
});
