import t from 'tap';
import { ipToInt, intToIp } from '../../src/net/ipv4.ts';
import { ClientRateLimiter, Verdict, type RateLimitOptions } from '../../src/services/ntp/rate-limit.ts';

const VICTIM = ipToInt('198.18.0.5');

/** Replies (time or kiss) `rl` lets through to `address` among `verdicts`. */
const replies = (verdicts: Verdict[]) => verdicts.filter((v) => v !== Verdict.DROP).length;

/** An address sharing the victim's slot, found by behaviour: it is limited right after the victim drained its bucket. */
function colliderOf(opts: RateLimitOptions): number {
  for (let i = 1; i < 1 << 16; i++) {
    const rl = new ClientRateLimiter(opts);
    for (let k = 0; k < opts.burst; k++) rl.check(VICTIM, 0);
    const other = ipToInt('10.0.0.0') + i;
    if (rl.check(other, 0) !== Verdict.ANSWER) return other;
  }
  throw new Error('no colliding address found');
}

t.test('a burst, then one kiss in 2^leak, then tokens come back', async (t) => {
  const rl = new ClientRateLimiter({ rate: 1, burst: 4, leak: 2, clients: 256 });
  const at = (ms: number, who = '198.18.0.5') => rl.check(ipToInt(who), ms);
  t.same([at(0), at(1), at(2), at(3)], [Verdict.ANSWER, Verdict.ANSWER, Verdict.ANSWER, Verdict.ANSWER], 'the burst is answered');
  t.same([at(4), at(5), at(6), at(7), at(8)], [Verdict.DROP, Verdict.DROP, Verdict.DROP, Verdict.KISS, Verdict.DROP], 'then every 4th gets a kiss, the rest are dropped');
  t.equal(at(10, '198.18.0.6'), Verdict.ANSWER, 'another client has its own bucket');
  t.equal(at(1100), Verdict.ANSWER, 'a second later one token is back');
  t.equal(at(1101), Verdict.DROP);
});

t.test('a flood is held to burst + rate x time, plus its kisses', async (t) => {
  const opts = { rate: 1, burst: 16, leak: 2, clients: 65536 };
  const rl = new ClientRateLimiter(opts);
  const verdicts: Verdict[] = [];
  for (let i = 0; i < 2000; i++) verdicts.push(rl.check(VICTIM, i * 5)); // 200/s for 10 s
  const answered = verdicts.filter((v) => v === Verdict.ANSWER).length;
  t.ok(answered <= 16 + 10 + 1, `time replies ${answered} <= burst 16 + 10 s x 1/s`);
  t.ok(replies(verdicts) <= answered + (2000 - answered) / 4 + 1, 'the rest: one kiss in 4 at most');
});

t.test('an address colliding with the victim shares its debt instead of resetting it', async (t) => {
  const opts = { rate: 1, burst: 16, leak: 2, clients: 256 };
  const collider = colliderOf(opts);
  t.not(collider, VICTIM);
  const rl = new ClientRateLimiter(opts);
  const toVictim: Verdict[] = [];
  // 1000 spoofed requests in 10 s, the victim's address alternating with its collider's.
  for (let i = 0; i < 1000; i++) {
    if (i % 2) rl.check(collider, i * 10);
    else toVictim.push(rl.check(VICTIM, i * 10));
  }
  const answered = toVictim.filter((v) => v === Verdict.ANSWER).length;
  t.ok(answered <= 16 + 10 + 1, `the victim got ${answered} time replies (a reset per collision gave all 500)`);
  t.ok(replies(toVictim) <= 16 + 10 + 1 + 500 / 4, `and ${replies(toVictim)} replies in all`);
});

t.test('a spoofed sweep of 100k addresses does not give a limited client a fresh bucket', async (t) => {
  const rl = new ClientRateLimiter({ rate: 1, burst: 2, leak: 8, clients: 300 });
  rl.check(VICTIM, 0); rl.check(VICTIM, 0);
  t.equal(rl.check(VICTIM, 0), Verdict.DROP, 'the victim is over its limit');
  for (let i = 0; i < 100_000; i++) rl.check(ipToInt('10.0.0.0') + i, 0);
  t.equal(rl.check(VICTIM, 0), Verdict.DROP, `still limited after a sweep to ${intToIp(ipToInt('10.0.0.0') + 99_999)}`);
  t.equal(rl.check(VICTIM, 1000), Verdict.ANSWER, 'and answered once a token has come back');
});
