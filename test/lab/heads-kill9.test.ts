/**
 * Three heads, no NTP upstream. The head etcd elects as time source is
 * killed with SIGKILL (its etcd member dies with it) while another head's
 * API takes writes: another head is elected and serves time, and once the
 * killed head is started again every acknowledged write is in it, without
 * anything else done to it, and its DNS answers them.
 */
import t from 'tap';
import { startHeads, type HeadProc } from '../helpers/heads.ts';
import { ntpdig } from '../helpers/ntp.ts';

// Every head's file has cluster:, head:, heads:, store: and state: from startHeads.
const config = () => `
subnets: [{ network: 198.18.0.0/24 }]
dhcp: { enabled: false }
tftp: { enabled: false }
ntp: { headPollInterval: 1 }
`;

type Status = { services: { ntpLeader: { leader?: string }; ntp: { leader?: string } } };

async function agreedLeader(h: Awaited<ReturnType<typeof startHeads>>, heads: readonly HeadProc[], not?: string): Promise<string> {
  const end = Date.now() + 40_000;
  for (;;) {
    const views = heads.map((x) => { try { return (JSON.parse(h.api(h.lab.clients[0]!, x, 'GET', '/api/v1/status').body) as Status).services; } catch { return undefined; } });
    const l = views[0]?.ntpLeader.leader;
    if (l && l !== not && views.every((v) => v?.ntpLeader.leader === l && v.ntp.leader === l)) return l;
    if (Date.now() > end) throw new Error(`the heads did not agree on an NTP leader${not ? ` other than ${not}` : ''}: ${JSON.stringify(views)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

t.test('the NTP leader killed -9 while another head takes writes: another leads, nothing acknowledged is lost', async (t) => {
  const h = await startHeads(t, { tag: 'hk', clients: [{ mac: '52:54:00:c0:00:01', cidr: '198.18.0.50/24' }], config });
  const admin = h.lab.clients[0]!;
  const leader = await agreedLeader(h, h.heads);
  const b = h.heads.find((x) => x.name === leader)!;
  const a = h.heads.find((x) => x !== b)!;
  t.pass(`etcd elects ${leader} as time source; writes go to ${a.name}`);
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
  t.ok(acked.length >= 40, `head ${a.name} kept acknowledging writes with ${b.name} down (${acked.length} acknowledged, ${refused} refused)`);
  const rest = h.heads.filter((x) => x !== b);
  const next = await agreedLeader(h, rest, b.name);
  t.not(next, b.name, `${next} is elected once ${b.name} is gone, and both remaining heads' NTP follow it`);
  const served = ntpdig(h.lab, admin.ns, rest.find((x) => x.name === next)!.address).answer;
  t.equal(served?.stratum, 10, `${next} serves its clock at the local stratum`);
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
  t.same(missing, [], `the restarted head ${b.name} has every acknowledged write (${acked.length})`);
  const last = acked[acked.length - 1]!;
  t.match(h.lab.run(admin.ns, 'dig', [`@${b.address}`, '+short', '+tries=1', '+time=2', `${last}.lab.test`]).stdout, /198\.18\.1\./, 'and its DNS answers them');
});
