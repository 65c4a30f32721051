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

/**
 * Runs a client up to 3 times and keeps the smallest |offset|: the clients'
 * own timestamps (ntpdig is Python) jitter by hundreds of microseconds when
 * the machine is loaded, and that is the client's noise, not the server's.
 */
function best(runs: () => { stratum?: number; offset?: number; output: string }): { stratum?: number; offset?: number; output: string } {
  let kept: { stratum?: number; offset?: number; output: string } | undefined;
  for (let i = 0; i < 3; i++) {
    const r = runs();
    if (r.offset !== undefined && (!kept || kept.offset === undefined || Math.abs(r.offset) < Math.abs(kept.offset))) kept = r;
    if (kept?.offset !== undefined && Math.abs(kept.offset) < MAX_OFFSET) break;
    kept ??= r;
  }
  return kept!;
}

/** ntpdig's one-line output (also sntp's and ntpdate's): "... +0.000030 +/- 0.000126 198.18.0.1 s5 no-leap". */
function parseLine(stdout: string, stderr: string): { stratum?: number; offset?: number; output: string } {
  const m = /([+-][\d.]+) \+\/- [\d.]+ \S+ s(\d+)/.exec(stdout);
  return { stratum: m ? Number(m[2]) : undefined, offset: m ? Number(m[1]) : undefined, output: stdout + stderr };
}

t.test('chronyd, ntpdig, sntp and ntpdate get the time at the configured stratum', async (t) => {
  const s = await startLabServer(t, { tag: 'nc', clients: 3, clientCidr: (i) => `198.18.0.${10 + i}/24`, config });
  const [a, b, c] = s.lab.clients.map((x) => x.ns) as [string, string, string];

  const chrony = best(() => chronydQuery(s.lab, a, HEAD));
  t.ok(chrony.offset !== undefined, 'chronyd -Q measured an offset', { output: chrony.output });
  t.ok(Math.abs(chrony.offset!) < MAX_OFFSET, `chronyd: offset ${chrony.offset} s within ${MAX_OFFSET} s`, { output: chrony.output });

  const dig = best(() => { const r = ntpdig(s.lab, b, HEAD, 4); return { ...r.answer, output: r.output }; });
  t.equal(dig.stratum, 5, 'ntpdig sees stratum 5', { output: dig.output });
  t.ok(Math.abs(dig.offset ?? 1) < MAX_OFFSET, `ntpdig: offset ${dig.offset} s within ${MAX_OFFSET} s`, { output: dig.output });

  const sntp = best(() => { const r = s.lab.run(c, 'sntp', ['-t', '2', HEAD], 30_000); return parseLine(r.stdout, r.stderr); });
  t.equal(sntp.stratum, 5, 'sntp sees stratum 5', { output: sntp.output });
  t.ok(Math.abs(sntp.offset ?? 1) < MAX_OFFSET, `sntp: offset ${sntp.offset} s within ${MAX_OFFSET} s`, { output: sntp.output });

  const nd = best(() => { const r = s.lab.run(c, 'ntpdate', ['-q', HEAD], 30_000); return parseLine(r.stdout, r.stderr); });
  t.equal(nd.stratum, 5, 'ntpdate -q sees stratum 5', { output: nd.output });
  t.ok(Math.abs(nd.offset ?? 1) < MAX_OFFSET, `ntpdate: offset ${nd.offset} s within ${MAX_OFFSET} s`, { output: nd.output });
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
