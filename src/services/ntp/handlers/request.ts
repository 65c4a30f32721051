import { decode, Mode, modeOf, NtpDecodeError } from '../../../../protocols/ntp/codec.ts';
import type { Handler } from '../context.ts';

/**
 * Lets through client requests (mode 3, versions 1-4) and nothing else.
 * Control (6) and private (7) modes are refused before decoding: their
 * replies can be many times the request (ntpd's monlist), the classic NTP
 * amplifier. Authenticated requests are refused too: without the key, any
 * answer would fail the client's check.
 */
export function acceptRequests(): Handler {
  return (ctx) => {
    const b = ctx.bytes;
    if (b.length > 0) {
      const mode = modeOf(b[0]!);
      if (mode === Mode.CONTROL) { ctx.drop = 'control'; return false; }
      if (mode === Mode.PRIVATE) { ctx.drop = 'private'; return false; }
    }
    try {
      decode(b, ctx.req);
    } catch (e) {
      if (!(e instanceof NtpDecodeError)) throw e;
      ctx.drop = e.reason;
      return false;
    }
    const req = ctx.req;
    if (req.mode !== Mode.CLIENT) { ctx.drop = 'mode'; return false; }
    if (req.version < 1 || req.version > 4) { ctx.drop = 'version'; return false; }
    if (req.mac) { ctx.drop = 'authenticated'; return false; }
    return true;
  };
}
