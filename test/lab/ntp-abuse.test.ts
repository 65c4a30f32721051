/**
 * Abuse against a real bootherd in a lab namespace: control (6) and private
 * (7) mode requests, truncated and random datagrams get no answer and do not
 * hurt the listener; a flood from one client gets RATE kiss-o'-deaths and is
 * mostly dropped, while another client is still served. The drops are
 * counted by reason (visible in the debug log, which names each).
 */
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLabServer } from '../helpers/lab-server.ts';
import { ntpdig, waitFor } from '../helpers/ntp.ts';

const HEAD = '198.18.0.1';
const PROBE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/ntp-probe.ts');
const TSX = import.meta.resolve('tsx');

interface ProbeResult {
  control: number; private: number; truncated: number; random: number; randomSent: number;
  alive: number; aliveStratum: number; flood: number; floodReplies: number; floodTime: number; floodKisses: number; kissEchoes: boolean;
}

t.test('modes 6 and 7, truncated and random datagrams go unanswered; a flood is kissed', async (t) => {
  const s = await startLabServer(t, {
    tag: 'nab', clients: 2, clientCidr: (i) => `198.18.0.${10 + i}/24`,
    config: (state) => `
head: { name: head, address: ${HEAD} }
state: ${state}
log: { level: debug }
dhcp: { enabled: false }
subnets:
  - network: 198.18.0.0/24
ntp:
  localStratum: 6
  rateLimit: { rate: 1, burst: 16, leak: 2 }
`,
  });
  const [attacker, bystander] = s.lab.clients.map((c) => c.ns) as [string, string];
  const run = s.lab.run(attacker, process.execPath, ['--import', TSX, PROBE, HEAD], 60_000);
  t.equal(run.code, 0, 'the probe ran', { stderr: run.stderr });
  const r = JSON.parse(run.stdout) as ProbeResult;

  t.equal(r.control, 0, 'mode 6 (ntpq) is never answered');
  t.equal(r.private, 0, 'mode 7 (monlist) is never answered');
  t.equal(r.truncated, 0, 'truncated datagrams are dropped');
  t.equal(r.random, 0, `${r.randomSent} random datagrams are dropped`);
  t.equal(r.alive, 1, 'the listener still answers a good request');
  t.equal(r.aliveStratum, 6);

  t.ok(r.floodKisses >= 1, `the flood got RATE kiss-o'-deaths (${r.floodKisses})`);
  t.ok(r.kissEchoes, 'each kiss echoes the client\'s transmit timestamp and nothing else');
  t.ok(r.floodTime <= 16 + 2, `time replies stop after the burst (${r.floodTime} of ${r.flood})`);
  t.ok(r.floodReplies < r.flood / 2, `most of the flood is dropped, not reflected (${r.floodReplies} replies to ${r.flood})`);

  const other = ntpdig(s.lab, bystander, HEAD);
  t.equal(other.answer?.stratum, 6, 'another client is still served', { output: other.output });

  const drops = (reason: string) => [...s.logs().matchAll(new RegExp(`"reason":"${reason}"[^\\n]*"msg":"NTP datagram dropped"`, 'g'))].length;
  // The probe ran synchronously: let the server's log lines arrive first.
  await waitFor('the rate-limit drops in the log', () => (drops('rate-limit') > 100 ? true : undefined), 15_000, s.logs);
  t.ok(drops('control') >= 2, 'counted: control');
  t.ok(drops('private') >= 2, 'counted: private (the random datagrams add some of both)');
  t.ok(drops('short') >= 3, 'counted: short');
  t.ok(drops('trailer') >= 1, 'counted: trailer');
  t.ok(drops('rate-limit') > 100, 'counted: rate-limit');
});
