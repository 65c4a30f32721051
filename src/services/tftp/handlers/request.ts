import { ErrorCode, Op } from '../../../../protocols/tftp/codec.ts';
import { refuse, type Handler } from '../context.ts';

/** bootherd serves boot files; nodes never upload (RFC 1350 WRQ). */
export const refuseWrites: Handler = (ctx) => {
  if (ctx.req.op === Op.WRQ) return refuse(ctx, { code: ErrorCode.ACCESS_VIOLATION, message: 'this server is read-only: write requests are refused', reason: 'write-request' });
  return true;
};

const MODES = new Set(['octet', 'netascii']);
const isMode = (s: string) => MODES.has(s.toLowerCase());

/**
 * Transfer mode: octet or netascii (RFC 1350; `mail` is for writes only).
 * A NUL inside the file name splits it, so the rest of the name lands where
 * the mode belongs and the real mode further on: `a\0../x\0octet`. That is
 * refused as an access violation, like any other attempt to reach a name
 * other than the one the first string shows.
 */
export const checkMode: Handler = (ctx) => {
  const { mode, options, extra } = ctx.req;
  if (isMode(mode)) {
    ctx.netascii = mode.toLowerCase() === 'netascii';
    return true;
  }
  const later = [...extra, ...options.keys(), ...options.values()];
  if (later.some(isMode)) return refuse(ctx, { code: ErrorCode.ACCESS_VIOLATION, message: 'file names may not contain NUL bytes', reason: 'name-nul' });
  return refuse(ctx, { code: ErrorCode.ILLEGAL_OPERATION, message: `unknown transfer mode ${JSON.stringify(mode.slice(0, 32))}: use octet or netascii`, reason: 'mode' });
};
