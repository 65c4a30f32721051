/**
 * bootherd following a real upstream: chronyd 4.3 serving a local reference
 * at stratum 3 in its own namespace. bootherd must serve stratum 4 with the
 * upstream as reference id, say "unsynchronised" once the upstream is killed,
 * and follow it again when it returns. ntpdig is the client that checks what
 * bootherd serves.
 */
import t from 'tap';
import { Lab } from '../../src/lab/netns.ts';
import { uniquePrefix } from '../helpers/lab-server.ts';
import { lastState, ntpdig, startChronydServer, startHead, waitFor } from '../helpers/ntp.ts';

const HEAD = '198.18.0.1';
const UPSTREAM = '198.18.0.3';

t.test('stratum upstream+1, unsynchronised without it, back with it', async (t) => {
  const lab = Lab.create({ prefix: uniquePrefix('nup'), clients: 2, clientCidr: (i) => [`${UPSTREAM}/24`, '198.18.0.10/24'][i] });
  t.teardown(() => lab.destroy());
  const [upstreamNs, clientNs] = lab.clients.map((c) => c.ns) as [string, string];

  let chronyd = startChronydServer(lab, upstreamNs, 3);
  const head = await startHead(lab, lab.head.ns, `
head: { name: head, address: ${HEAD} }
state: STATE_DIR
dhcp: { enabled: false }
subnets:
  - network: 198.18.0.0/24
ntp:
  upstreams: [${UPSTREAM}]
  pollInterval: 1
`);
  t.teardown(() => head.stop());

  const synced = await waitFor('bootherd to follow the upstream', () => {
    const s = lastState(head);
    return s?.['mode'] === 'synchronised' ? s : undefined;
  }, 30_000, head.logs);
  t.equal(synced['stratum'], 4, 'stratum = upstream + 1');
  t.equal(synced['referenceId'], UPSTREAM, 'reference id = the upstream');
  t.equal(synced['source'], `${UPSTREAM}:123`);
  t.ok(Number(synced['rootDelay']) > 0, 'root delay includes the round trip to the upstream');

  const dig = ntpdig(lab, clientNs, HEAD);
  t.equal(dig.answer?.stratum, 4, 'ntpdig sees stratum 4', { output: dig.output });

  await chronyd.stop();
  await waitFor('bootherd to notice the upstream is gone', () => (lastState(head)?.['mode'] === 'unsynchronised' ? true : undefined), 30_000, head.logs);
  const after = ntpdig(lab, clientNs, HEAD);
  t.equal(after.answer, undefined, 'ntpdig no longer accepts the head');
  t.match(after.output, /stratum too high/, 'it says stratum 16');
  t.match(head.logs(), /"msg":"NTP source unreachable"/, 'the log says why');

  chronyd = startChronydServer(lab, upstreamNs, 3);
  t.teardown(() => chronyd.stop());
  await waitFor('bootherd to follow the upstream again', () => (lastState(head)?.['mode'] === 'synchronised' ? true : undefined), 30_000, head.logs);
  t.equal(ntpdig(lab, clientNs, HEAD).answer?.stratum, 4, 'stratum 4 again');
});
