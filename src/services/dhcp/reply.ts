/**
 * Turning a decided context into the reply datagram: option order and
 * filtering by the parameter request list, size limits, and where it goes.
 */
import { decode, encode, IP_UDP_OVERHEAD, type DhcpMessage } from '../../../protocols/dhcp/codec.ts';
import { MessageType, Opt, readU16, text, u32, u8, ipList } from '../../../protocols/dhcp/options.ts';
import type { DhcpContext } from './context.ts';
import { OptionBytes } from './option-bytes.ts';

/** Options sent whether or not the client listed them in option 55: what any client needs, and PXE's. */
const ALWAYS = new Set<number>([
  Opt.SUBNET_MASK, Opt.ROUTER, Opt.DNS_SERVERS, Opt.HOST_NAME, Opt.DOMAIN_NAME,
  Opt.LEASE_TIME, Opt.RENEWAL_TIME, Opt.REBINDING_TIME, Opt.MESSAGE,
  Opt.VENDOR_CLASS, Opt.VENDOR_SPECIFIC, Opt.TFTP_SERVER, Opt.BOOTFILE, Opt.CLIENT_UUID,
]);

/** Ordered first, so that nothing essential is dropped when the client's size limit bites. */
const LEADING = [Opt.LEASE_TIME, Opt.RENEWAL_TIME, Opt.REBINDING_TIME, Opt.SUBNET_MASK];

const DEFAULT_MAX = 576 - IP_UDP_OVERHEAD;
/** The largest reply we send even when a client allows more: an Ethernet frame. */
const CEILING = 1500 - IP_UDP_OVERHEAD;

/** Option 53, per reply type. */
const messageTypeBytes = new OptionBytes(u8);
/** Option 54, per server address (one per subnet at most). */
const serverIdBytes = new OptionBytes((ip: number) => ipList([ip]));

export function orderOptions(ctx: DhcpContext): Map<number, Buffer> {
  const have = ctx.options;
  const out = new Map<number, Buffer>();
  out.set(Opt.MESSAGE_TYPE, messageTypeBytes.of(ctx.replyType!));
  out.set(Opt.SERVER_ID, serverIdBytes.of(ctx.serverId));
  if (ctx.replyType !== MessageType.NAK) {
    for (const code of LEADING) { const v = have.get(code); if (v) out.set(code, v); }
    const prl = ctx.req.options.get(Opt.PARAMETER_LIST);
    if (prl) for (const code of prl) { const v = have.get(code); if (v && !out.has(code)) out.set(code, v); }
    for (const [code, v] of have) if (ALWAYS.has(code) && !out.has(code)) out.set(code, v);
  } else {
    const msg = have.get(Opt.MESSAGE);
    if (msg) out.set(Opt.MESSAGE, msg);
  }
  // RFC 6842: echo the client identifier. RFC 3046: relay agent information comes back unchanged, last.
  const clientId = ctx.req.options.get(Opt.CLIENT_ID);
  if (clientId) out.set(Opt.CLIENT_ID, clientId);
  const relay = ctx.req.options.get(Opt.RELAY_AGENT);
  if (relay) out.set(Opt.RELAY_AGENT, relay);
  return out;
}

export function buildReply(ctx: DhcpContext): { bytes: Buffer; dropped: number[] } {
  const req = ctx.req;
  const nak = ctx.replyType === MessageType.NAK;
  const msg: DhcpMessage = {
    op: 2,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    // A NAK through a relay asks the relay to broadcast it (RFC 2131 4.3.2).
    flags: nak && req.giaddr ? req.flags | 0x8000 : req.flags,
    ciaddr: ctx.replyType === MessageType.ACK ? req.ciaddr : 0,
    yiaddr: nak ? 0 : ctx.yiaddr,
    siaddr: nak ? 0 : ctx.siaddr,
    giaddr: req.giaddr,
    chaddr: req.chaddr,
    sname: '',
    file: nak ? '' : ctx.file,
    options: orderOptions(ctx),
  };
  const asked = readU16(req.options.get(Opt.MAX_MESSAGE_SIZE));
  const maxLength = asked ? Math.min(asked - IP_UDP_OVERHEAD, CEILING) : DEFAULT_MAX;
  return encode(msg, { maxLength });
}

/*
 * Replies changed after the store answered. By then the request's datagram
 * buffer belongs to later datagrams (its Buffers are views into the receive
 * slots), so these read only the reply already built from it.
 */

/** The ACK `built`, for `seconds` of lease instead (T1 and T2 at 1/2 and 7/8, as networkOptions sets them). */
export function withLeaseTime(built: Buffer, seconds: number): Buffer {
  const m = decode(built);
  const options = new Map(m.options);
  options.set(Opt.LEASE_TIME, u32(seconds));
  options.set(Opt.RENEWAL_TIME, u32(Math.floor(seconds / 2)));
  options.set(Opt.REBINDING_TIME, u32(Math.floor((seconds * 7) / 8)));
  return encode({ ...m, options }).bytes;
}

/** The NAK for the ACK `built` (what buildReply makes of a NAK: no address, server id, message, echoed 61 and 82). */
export function nakInsteadOf(built: Buffer, why: string): Buffer {
  const m = decode(built);
  const options = new Map<number, Buffer>([[Opt.MESSAGE_TYPE, messageTypeBytes.of(MessageType.NAK)]]);
  for (const [code, v] of [[Opt.SERVER_ID, m.options.get(Opt.SERVER_ID)], [Opt.MESSAGE, text(why)], [Opt.CLIENT_ID, m.options.get(Opt.CLIENT_ID)], [Opt.RELAY_AGENT, m.options.get(Opt.RELAY_AGENT)]] as const) {
    if (v) options.set(code, v);
  }
  return encode({ ...m, flags: m.giaddr ? m.flags | 0x8000 : m.flags, ciaddr: 0, yiaddr: 0, siaddr: 0, sname: '', file: '', options }).bytes;
}

/** IPv4 address as an integer (what the batch socket takes), and UDP port. */
export interface Destination { readonly address: number; readonly port: number }

const BROADCAST = 0xffffffff;

/**
 * RFC 2131 4.1: to the relay if relayed; NAKs broadcast; to ciaddr if the
 * client has an address; else broadcast. (Unicasting to yiaddr before the
 * client has the address would need an ARP entry we cannot install from Node;
 * every client accepts the broadcast.)
 */
export function replyDestination(ctx: DhcpContext, serverPort: number, clientPort: number): Destination {
  const req = ctx.req;
  // The PXE boot server (4011) answers where the request came from: the client has its address by then.
  if (ctx.bootServer) return ctx.bootServer;
  if (req.giaddr) return { address: req.giaddr, port: serverPort };
  if (ctx.replyType === MessageType.NAK) return { address: BROADCAST, port: clientPort };
  if (req.ciaddr) return { address: req.ciaddr, port: clientPort };
  return { address: BROADCAST, port: clientPort };
}
