import { MessageType, Opt } from '../../../../protocols/dhcp/options.ts';
import { dropped, type Handler } from '../context.ts';
import { answeringHead, type DhcpHeads } from '../heads.ts';

/**
 * Several heads. A head whose clock is off from the others' answers nothing
 * (expiries are compared across heads). On one segment, a DISCOVER, or an INIT-REBOOT REQUEST (a
 * broadcast naming no server), is answered only by the head the MAC hashes
 * to (answeringHead). Everything else names its server or its address, and
 * is handled by the lease handler.
 */
export function answerOnlyAsChosen(heads: DhcpHeads): Handler {
  return (ctx) => {
    const refusal = heads.refusal?.();
    if (refusal) return dropped(ctx, 'clock-skew', refusal);
    if (ctx.type !== MessageType.DISCOVER && !(ctx.type === MessageType.REQUEST && !ctx.req.ciaddr && !ctx.req.options.has(Opt.SERVER_ID))) return true;
    const chosen = answeringHead(ctx.clientKey, heads.live(), ctx.req.secs);
    if (chosen === undefined || chosen === heads.self) return true;
    return dropped(ctx, 'other-head', `head ${chosen} answers this client (hash of its MAC over the live heads; secs ${ctx.req.secs}): silent`);
  };
}
