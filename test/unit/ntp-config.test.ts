/** The `ntp:` section and the top-level `heads:` list: defaults, parsing, and errors that name the field. */
import t from 'tap';
import { ConfigError, parseConfig } from '../../src/config/load.ts';

const base = (extra: string) => `
head: { name: head1, address: 198.18.0.1 }
state: /tmp/bootherd-config-test
subnets:
  - network: 198.18.0.0/24
${extra}`;

function problems(text: string): string[] {
  try { parseConfig(text, 'cluster.yaml'); return []; } catch (e) { if (e instanceof ConfigError) return e.problems.map((p) => `${p.field}: ${p.message}`); throw e; }
}

t.test('defaults keep existing cluster files valid', async (t) => {
  const c = parseConfig(base(''), 'cluster.yaml');
  t.same(c.ntp, {
    enabled: true, address: '0.0.0.0', port: 123, upstreams: [], pollInterval: 64, headPollInterval: 16,
    rateLimit: { enabled: true, rate: 1, burst: 16, leak: 2, clients: 65536 }, workers: 1,
  });
  t.same(c.heads, []);
});

t.test('upstreams, intervals, local stratum, rate limit', async (t) => {
  const c = parseConfig(base(`ntp:
  upstreams: [192.0.2.10, "192.0.2.11:1123"]
  pollInterval: 2m
  headPollInterval: 5s
  localStratum: 8
  rateLimit: { rate: 0.5, burst: 8 }
  workers: 2`), 'cluster.yaml');
  t.same(c.ntp.upstreams, [{ address: '192.0.2.10', port: 123 }, { address: '192.0.2.11', port: 1123 }]);
  t.equal(c.ntp.pollInterval, 120);
  t.equal(c.ntp.headPollInterval, 5);
  t.equal(c.ntp.localStratum, 8);
  t.same(c.ntp.rateLimit, { enabled: true, rate: 0.5, burst: 8, leak: 2, clients: 65536 });
  t.equal(c.ntp.workers, 2);
});

t.test('errors name the field and say what is expected', async (t) => {
  t.match(problems(base('ntp: { upstreams: [ntp.example.org] }')), [/^ntp\.upstreams\[0\]: expected an NTP server as an IPv4 address/]);
  t.match(problems(base('ntp: { upstreams: ["192.0.2.1:0"] }')), [/^ntp\.upstreams\[0\]: /]);
  t.match(problems(base('ntp: { localStratum: 16 }')), [/^ntp\.localStratum: expected a stratum 1-15 \(16 means unsynchronised\)/]);
  t.match(problems(base('ntp: { pollInterval: 0 }')), [/^ntp\.pollInterval: expected an interval of at least 1 second/]);
  t.match(problems(base('ntp: { rateLimit: { leak: 0 } }')), [/^ntp\.rateLimit\.leak: /]);
  t.match(problems(base('ntp: { polInterval: 5 }')), [/^ntp: unknown field "polInterval"/]);
});

t.test('heads: this head listed once, at its address', async (t) => {
  const two = `heads:
  - { name: head1, address: 198.18.0.1 }
  - { name: head2, address: 198.18.0.2 }`;
  t.same(parseConfig(base(two), 'cluster.yaml').heads, [{ name: 'head1', address: '198.18.0.1' }, { name: 'head2', address: '198.18.0.2' }]);
  t.match(problems(base('heads: [{ name: head2, address: 198.18.0.2 }]')), [/^heads: this head \(head\.name head1\) is not listed/]);
  t.match(problems(base('heads: [{ name: head1, address: 198.18.0.9 }]')), [/^heads\[0\]\.address: head head1 is at 198\.18\.0\.1/]);
  t.match(problems(base(`heads:
  - { name: head1, address: 198.18.0.1 }
  - { name: head1, address: 198.18.0.2 }`)), [/^heads\[1\]\.name: duplicate head name head1/]);
  t.ok(problems(base('heads: [{ name: head1, adress: 198.18.0.1 }]')).some((p) => /^heads\[0\]: unknown field "adress"/.test(p)), 'a misspelt field is named');
});
