/**
 * Three heads, and etcd stops answering on every one (each member SIGSTOPped:
 * sockets open, nothing answers, as a hung or cut-off etcd): API writes get
 * 503 naming etcd, DNS and the API's reads keep answering from the cache;
 * once the members run again, writes succeed on the same bootherd processes.
 */
import t from 'tap';
import { etcdMemberPids, startHeads, type HeadProc } from '../helpers/heads.ts';

// Every head's file has cluster:, head:, heads:, store: and state: from startHeads.
const config = () => `
subnets: [{ network: 198.18.0.0/24 }]
dhcp: { enabled: false }
tftp: { enabled: false }
ntp: { enabled: false }
`;

t.test('etcd down on every head: writes 503, answers go on; etcd back: writes work, no restart', async (t) => {
  const h = await startHeads(t, { tag: 'hd', clients: [{ mac: '52:54:00:c0:00:01', cidr: '198.18.0.50/24' }], config });
  const [a, b] = h.heads as [HeadProc, HeadProc, HeadProc];
  const admin = h.lab.clients[0]!;
  const dig = (head: HeadProc, name: string) => h.lab.run(admin.ns, 'dig', [`@${head.address}`, '+short', '+tries=1', '+time=2', name]).stdout.trim();
  t.equal(h.api(admin, a, 'POST', '/api/v1/hosts', { name: 'before', ip: '198.18.0.70' }).status, 201, 'a host added while etcd runs');
  const until = async (what: string, probe: () => boolean) => {
    const end = Date.now() + 20_000;
    while (!probe()) { if (Date.now() > end) throw new Error(`timed out waiting for ${what}`); await new Promise((r) => setTimeout(r, 200)); }
  };
  await until('head B to have the host', () => dig(b, 'before.lab.test') === '198.18.0.70');

  // The etcd members: the processes named etcd in the heads' namespaces.
  const members = etcdMemberPids(h);
  t.equal(members.length, 3, 'one etcd member per head');
  for (const pid of members) process.kill(pid, 'SIGSTOP');
  t.teardown(() => { for (const pid of members) { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } } });

  const refused = h.api(admin, a, 'POST', '/api/v1/hosts', { name: 'during', ip: '198.18.0.71' });
  t.equal(refused.status, 503, 'a write gets 503');
  t.match(refused.body, /etcd/i, 'naming etcd');
  t.equal(h.api(admin, b, 'DELETE', '/api/v1/hosts/before').status, 503, 'on every head');
  t.equal(dig(a, 'before.lab.test'), '198.18.0.70', 'DNS keeps answering on head A');
  t.equal(dig(b, 'before.lab.test'), '198.18.0.70', 'and on head B, the deletion that failed taken back');
  t.equal(dig(a, 'during.lab.test'), '', 'the refused write is not visible');
  t.equal(h.api(admin, b, 'GET', '/api/v1/hosts').status, 200, 'API reads answer');

  for (const pid of members) process.kill(pid, 'SIGCONT');
  let status = 0;
  const end = Date.now() + 30_000;
  while (status !== 201 && Date.now() < end) {
    status = h.api(admin, a, 'POST', '/api/v1/hosts', { name: 'after', ip: '198.18.0.72' }).status;
    if (status !== 201) await new Promise((r) => setTimeout(r, 500));
  }
  t.equal(status, 201, 'once etcd runs again, a write on the same bootherd succeeds');
  await until('head B to have the new host', () => dig(b, 'after.lab.test') === '198.18.0.72');
  t.pass('and the other heads answer it');
});
