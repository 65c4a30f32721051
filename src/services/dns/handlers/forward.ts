import { Flag } from '../../../../protocols/dns/constants.ts';
import { intToIp } from '../../../net/ipv4.ts';
import type { AnswerCache } from '../cache.ts';
import type { DnsDecision, Handler } from '../context.ts';

const FORWARD: DnsDecision = { kind: 'forward' };
const REFUSE: DnsDecision = { kind: 'refuse' };

/** A cached upstream answer, when the client may recurse and one is fresh. */
export function cachedAnswer(cache: AnswerCache): Handler {
  return (ctx) => {
    if (!ctx.recursion) return true;
    const hit = cache.get(ctx.raw, ctx.query, ctx.limit);
    if (!hit) return true;
    ctx.decision = { kind: 'cached', response: hit };
    ctx.trace?.push(`${ctx.query.name} answered from the cache`);
    return false;
  };
}

/**
 * Everything else goes upstream, for clients allowed to recurse that asked
 * for recursion (RD); others are REFUSED.
 */
export function forwardOrRefuse(): Handler {
  return (ctx) => {
    if (ctx.recursion && ctx.query.flags & Flag.RD) {
      ctx.decision = FORWARD;
      ctx.trace?.push(`${ctx.query.name} is not ours: forwarded`);
    } else {
      ctx.decision = REFUSE;
      ctx.trace?.push(`${ctx.query.name} is not ours and ${intToIp(ctx.client)} may not recurse, did not ask to, or there are no upstreams: REFUSED`);
    }
    return false;
  };
}
