import type { NtpPacket, NtpTimestamp } from '../../../protocols/ntp/codec.ts';
import type { Reading } from './clock.ts';

export type DropReason =
  | 'short' | 'trailer'   // the codec refused it
  | 'oversized'           // longer than a receive slot (1 KiB): no NTP request is
  | 'control' | 'private' // modes 6 and 7: never answered (amplification)
  | 'mode'                // not a client request (mode 1, 2, 4, 5 or 0)
  | 'version'             // version 0 or above 4
  | 'authenticated'       // carries a MAC; bootherd has no keys (chronyd stays silent too)
  | 'rate-limit'          // over the client's limit, and not the one in 2^leak that gets a kiss
  | 'internal';           // a handler failed (a bug): the datagram is lost, the listener is not

/** What to send back: the time, a RATE kiss-o'-death, or nothing. */
export type ReplyKind = 'time' | 'kiss-rate';

/**
 * One request on its way through the handler chain. The server reuses one
 * context (and its two packets) for every datagram: handling is synchronous,
 * so a context never outlives its datagram, and the per-packet path
 * allocates nothing.
 */
export interface NtpContext {
  /** When the datagram was handed to us (rate limits, dispersion). */
  rx: Reading;
  /** When it arrived: the kernel's receive timestamp, else `rx` (the reply's receive timestamp). */
  readonly received: NtpTimestamp;
  /** The client's IPv4 address (as an integer) and port. */
  client: number;
  clientPort: number;
  bytes: Buffer;
  /** The decoded request (filled by the first handler). */
  readonly req: NtpPacket;
  /** The reply, filled by the handler that decides it. */
  readonly res: NtpPacket;
  reply: ReplyKind | undefined;
  drop: DropReason | undefined;
}

/** A handler reads the request and fills the reply; returning false ends the chain. */
export type Handler = (ctx: NtpContext) => boolean;
