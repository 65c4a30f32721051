import { Kiss, Leap, Mode, STRATUM_KISS } from '../../../../protocols/ntp/codec.ts';
import type { Handler } from '../context.ts';
import { Verdict, type ClientRateLimiter } from '../rate-limit.ts';

/**
 * Per-client rate limit. Over the limit, one request in 2^leak gets a RATE
 * kiss-o'-death (RFC 5905 7.4: stratum 0, reference id "RATE") and the rest
 * are dropped. Like ntpd, the kiss echoes the client's transmit timestamp in
 * all three timestamps: it tells the client to back off and nothing about
 * our clock, and it is no bigger than the request.
 */
export function rateLimit(limiter: ClientRateLimiter): Handler {
  return (ctx) => {
    const verdict = limiter.check(ctx.client, ctx.rx);
    if (verdict === Verdict.ANSWER) return true;
    if (verdict === Verdict.DROP) { ctx.drop = 'rate-limit'; return false; }
    const { req, res } = ctx;
    res.leap = Leap.UNSYNCHRONISED;
    res.version = req.version;
    res.mode = Mode.SERVER;
    res.stratum = STRATUM_KISS;
    res.poll = req.poll;
    res.precision = 0;
    res.rootDelay = 0;
    res.rootDispersion = 0;
    res.referenceId = Kiss.RATE;
    res.referenceTime.seconds = 0; res.referenceTime.fraction = 0;
    res.originTime.seconds = req.transmitTime.seconds; res.originTime.fraction = req.transmitTime.fraction;
    res.receiveTime.seconds = req.transmitTime.seconds; res.receiveTime.fraction = req.transmitTime.fraction;
    res.transmitTime.seconds = req.transmitTime.seconds; res.transmitTime.fraction = req.transmitTime.fraction;
    ctx.reply = 'kiss-rate';
    return false;
  };
}
