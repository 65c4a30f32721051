/**
 * Real NTP clients against a real bootherd, each in its own lab namespace:
 * chronyd -Q (chrony 4.3) and ntpsec's ntpdig 1.2.2 under its three names
 * (ntpdig, sntp, ntpdate -q). Every namespace shares the host's clock, so the
 * offset each client measures is bootherd's timestamping error alone: it must
 * be within a few hundred microseconds (an accuracy bound, not a timing one).
 */
import t from 'tap';
import { startLabServer } from '../helpers/lab-server.ts';
import { chronydQuery, ntpdig } from '../helpers/ntp.ts';

const HEAD = '198.18.0.1';
const MAX_OFFSET = 0.0005;

const config = (state: string) => `
head: { name: head, address: ${HEAD} }
state: ${state}
dhcp: { enabled: false }
subnets:
  - network: 198.18.0.0/24
ntp:
  localStratum: 5
`;

t.test('chronyd, ntpdig, sntp and ntpdate get the time at the configured stratum', async (t) => {
  const s = await startLabServer(t, { tag: 'nc', clients: 3, clientCidr: (i) => `198.18.0.${10 + i}/24`, config });
  const [a, b, c] = s.lab.clients.map((x) => x.ns) as [string, string, string];

  const chrony = chronydQuery(s.lab, a, HEAD);
  t.ok(chrony.offset !== undefined, 'chronyd -Q measured an offset', { output: chrony.output });
  t.ok(Math.abs(chrony.offset!) < MAX_OFFSET, `chronyd: offset ${chrony.offset} s within ${MAX_OFFSET} s`);

  const dig = ntpdig(s.lab, b, HEAD, 4);
  t.equal(dig.answer?.stratum, 5, 'ntpdig sees stratum 5', { output: dig.output });
  t.ok(Math.abs(dig.answer?.offset ?? 1) < MAX_OFFSET, `ntpdig: offset ${dig.answer?.offset} s within ${MAX_OFFSET} s`);

  const sntp = s.lab.run(c, 'sntp', ['-t', '2', HEAD], 30_000);
  const sm = /([+-][\d.]+) \+\/- [\d.]+ \S+ s(\d+)/.exec(sntp.stdout);
  t.ok(sm, 'sntp answered', { output: sntp.stdout + sntp.stderr });
  t.equal(Number(sm?.[2]), 5, 'sntp sees stratum 5');
  t.ok(Math.abs(Number(sm?.[1])) < MAX_OFFSET, `sntp: offset ${sm?.[1]} s`);

  const nd = s.lab.run(c, 'ntpdate', ['-q', HEAD], 30_000);
  const nm = /([+-][\d.]+) \+\/- [\d.]+ \S+ s(\d+)/.exec(nd.stdout);
  t.ok(nm, 'ntpdate -q answered', { output: nd.stdout + nd.stderr });
  t.equal(Number(nm?.[2]), 5, 'ntpdate sees stratum 5');
  t.ok(Math.abs(Number(nm?.[1])) < MAX_OFFSET, `ntpdate: offset ${nm?.[1]} s`);
});

t.test('without a source or a local stratum the head says it is unsynchronised', async (t) => {
  const s = await startLabServer(t, {
    tag: 'nu', clients: 1, clientCidr: () => '198.18.0.10/24',
    config: (state) => config(state).replace('  localStratum: 5\n', '  upstreams: [198.18.0.99]\n  pollInterval: 1\n'),
  });
  const dig = ntpdig(s.lab, s.lab.clients[0]!.ns, HEAD);
  t.equal(dig.answer, undefined, 'ntpdig refuses the answer');
  t.match(dig.output, /stratum too high/, 'because the stratum is 16');
});
