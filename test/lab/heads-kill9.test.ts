/**
 * Three heads; head A's API takes writes while head B is killed with
 * SIGKILL (its etcd member dies with it) and started again: every write A
 * acknowledged is in B once it is back, without anything else done to it,
 * and B's DNS answers them.
 */
import t from 'tap';
import { startHeads, type HeadProc } from '../helpers/heads.ts';

const config = (self: { name: string; address: string }, heads: string, state: string) => `
cluster: { name: k9, domain: lab.test }
head: { name: ${self.name}, address: ${self.address} }
${heads}store: { kind: etcd }
state: ${state}
subnets: [{ network: 198.18.0.0/24 }]
dhcp: { enabled: false }
tftp: { enabled: false }
ntp: { enabled: false }
`;

t.test('nothing head A acknowledged is lost while head B is killed and restarted', async (t) => {
  const h = await startHeads(t, { tag: 'hk', clients: [{ mac: '52:54:00:c0:00:01', cidr: '198.18.0.50/24' }], config });
  const [a, b] = h.heads as [HeadProc, HeadProc, HeadProc];
  const admin = h.lab.clients[0]!;
  const acked: string[] = [];
  let refused = 0;
  const write = (n: number) => {
    for (let i = 0; i < n; i++) {
      const name = `h${acked.length + refused}`;
      const r = h.api(admin, a, 'POST', '/api/v1/hosts', { name, ip: `198.18.1.${(acked.length + refused) % 250 + 1}` });
      if (r.status === 201) acked.push(name); else refused++;
    }
  };
  write(15);
  const killed = b.kill9();
  write(15);
  await killed;
  write(15);
  t.ok(acked.length >= 40, `head A kept acknowledging writes with B down (${acked.length} acknowledged, ${refused} refused)`);
  await b.start();
  write(5);
  const end = Date.now() + 20_000;
  let missing: string[] = acked;
  while (missing.length && Date.now() < end) {
    const list = JSON.parse(h.api(admin, b, 'GET', '/api/v1/hosts').body) as Array<{ name: string }>;
    const have = new Set(list.map((x) => x.name));
    missing = acked.filter((n) => !have.has(n));
    if (missing.length) await new Promise((r) => setTimeout(r, 300));
  }
  t.same(missing, [], `the restarted head B has every acknowledged write (${acked.length})`);
  const last = acked[acked.length - 1]!;
  t.match(h.lab.run(admin.ns, 'dig', [`@${b.address}`, '+short', '+tries=1', '+time=2', `${last}.lab.test`]).stdout, /198\.18\.1\./, 'and its DNS answers them');
});
