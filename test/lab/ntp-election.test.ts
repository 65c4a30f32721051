/**
 * Two bootherd heads and no upstream: they elect the first listed head as the
 * time source, the other follows it; when the leader stops, the other takes
 * over; when it returns, it leads again. ntpdig checks what each serves.
 */
import t from 'tap';
import { Lab } from '../../src/lab/netns.ts';
import { uniquePrefix } from '../helpers/lab-server.ts';
import { lastState, ntpdig, startHead, waitFor, type Head } from '../helpers/ntp.ts';

const HEAD1 = '198.18.0.1';
const HEAD2 = '198.18.0.2';

const clusterFile = (self: 'head1' | 'head2') => `
head: { name: ${self}, address: ${self === 'head1' ? HEAD1 : HEAD2} }
heads:
  - { name: head1, address: ${HEAD1} }
  - { name: head2, address: ${HEAD2} }
state: STATE_DIR
dhcp: { enabled: false }
subnets:
  - network: 198.18.0.0/24
ntp:
  headPollInterval: 1
`;

function inState(h: Head, mode: string, leader: string): Record<string, unknown> | undefined {
  const s = lastState(h);
  return s?.['mode'] === mode && s['leader'] === leader ? s : undefined;
}

t.test('the first listed head leads, the other follows, and the lead moves when it stops', async (t) => {
  const lab = Lab.create({ prefix: uniquePrefix('nel'), clients: 2, clientCidr: (i) => [`${HEAD2}/24`, '198.18.0.10/24'][i] });
  t.teardown(() => lab.destroy());
  const [head2Ns, clientNs] = lab.clients.map((c) => c.ns) as [string, string];

  let head1 = await startHead(lab, lab.head.ns, clusterFile('head1'));
  const head2 = await startHead(lab, head2Ns, clusterFile('head2'));
  t.teardown(() => Promise.all([head1.stop(), head2.stop()]));

  const led = await waitFor('head1 to lead', () => inState(head1, 'leader', 'head1'), 30_000, head1.logs);
  t.equal(led['stratum'], 10, 'the leader serves its clock at the default local stratum');
  const followed = await waitFor('head2 to follow head1', () => inState(head2, 'follower', 'head1'), 30_000, head2.logs);
  t.equal(followed['stratum'], 11, 'the follower serves one below');
  t.equal(followed['referenceId'], HEAD1, 'with the leader as reference');
  const seen = (followed['heads'] as Array<Record<string, unknown>>).find((h) => h['name'] === 'head1');
  t.equal(seen?.['reachable'], true, 'the log shows every head: head1 reachable');
  t.equal(seen?.['stratum'], 10, 'its stratum');
  t.type(seen?.['offset'], 'number', 'and its offset');

  t.equal(ntpdig(lab, clientNs, HEAD1).answer?.stratum, 10, 'a client of head1 sees stratum 10');
  t.equal(ntpdig(lab, clientNs, HEAD2).answer?.stratum, 11, 'a client of head2 sees stratum 11');

  await head1.stop();
  const took = await waitFor('head2 to take over', () => inState(head2, 'leader', 'head2'), 30_000, head2.logs);
  t.equal(took['stratum'], 10, 'head2 now serves at the local stratum');
  t.match(head2.logs(), /"source":"head1".*"msg":"NTP source unreachable"/, 'after noticing head1 is gone');
  t.equal(ntpdig(lab, clientNs, HEAD2).answer?.stratum, 10, 'its clients see stratum 10');

  head1 = await startHead(lab, lab.head.ns, clusterFile('head1'));
  await waitFor('head1 to lead again', () => inState(head1, 'leader', 'head1'), 30_000, head1.logs);
  await waitFor('head2 to follow head1 again', () => inState(head2, 'follower', 'head1'), 30_000, head2.logs);
  t.pass('the first listed head leads again once it answers');
});
