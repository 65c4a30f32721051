import t from 'tap';
import { ipToInt } from '../../src/net/ipv4.ts';
import { ClientRateLimiter, Verdict } from '../../src/services/ntp/rate-limit.ts';

t.test('a burst, then one kiss in 2^leak, then tokens come back', async (t) => {
  const rl = new ClientRateLimiter({ rate: 1, burst: 4, leak: 2, clients: 256 });
  const at = (ms: number, who = '198.18.0.5') => rl.check(ipToInt(who), ms);
  t.same([at(0), at(1), at(2), at(3)], [Verdict.ANSWER, Verdict.ANSWER, Verdict.ANSWER, Verdict.ANSWER], 'the burst is answered');
  t.same([at(4), at(5), at(6), at(7), at(8)], [Verdict.DROP, Verdict.DROP, Verdict.DROP, Verdict.KISS, Verdict.DROP], 'then every 4th gets a kiss, the rest are dropped');
  t.equal(at(10, '198.18.0.6'), Verdict.ANSWER, 'another client has its own bucket');
  t.equal(at(1100), Verdict.ANSWER, 'a second later one token is back');
  t.equal(at(1101), Verdict.DROP);
});

t.test('the table is bounded', async (t) => {
  const rl = new ClientRateLimiter({ rate: 1, burst: 2, leak: 1, clients: 300 });
  t.equal(rl.size, 512, 'rounded up to a power of two');
  for (let i = 0; i < 100_000; i++) rl.check(ipToInt(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), i);
  t.equal(rl.size, 512, 'a spoofed sweep over 100k addresses does not grow it');
});
