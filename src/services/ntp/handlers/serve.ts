import { Mode, secondsToShort } from '../../../../protocols/ntp/codec.ts';
import type { SystemClock } from '../clock.ts';
import type { Handler } from '../context.ts';
import { rootDispersionAt, type SystemState } from '../sync.ts';

/**
 * The answer (RFC 5905 server mode): this head's synchronisation state as
 * the last evaluation left it (the object is updated in place), the client's transmit timestamp as origin
 * (bit for bit), and the time the request arrived. The transmit timestamp is written
 * by the service immediately before the datagram leaves.
 */
export function serveTime(st: SystemState, clock: SystemClock): Handler {
  return (ctx) => {
    const { req, res } = ctx;
    res.leap = st.leap;
    res.version = req.version;
    res.mode = Mode.SERVER;
    res.stratum = st.stratum;
    // Like ntpd and chronyd, echo the client's poll: it is the client's to choose.
    res.poll = req.poll;
    res.precision = clock.precision;
    res.rootDelay = st.rootDelay;
    res.rootDispersion = secondsToShort(rootDispersionAt(st, ctx.rx));
    res.referenceId = st.referenceId;
    res.referenceTime.seconds = st.referenceTime.seconds; res.referenceTime.fraction = st.referenceTime.fraction;
    res.originTime.seconds = req.transmitTime.seconds; res.originTime.fraction = req.transmitTime.fraction;
    res.receiveTime.seconds = ctx.received.seconds; res.receiveTime.fraction = ctx.received.fraction;
    ctx.reply = 'time';
    return true;
  };
}
