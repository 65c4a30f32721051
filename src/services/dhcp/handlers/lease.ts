import { MessageType, Opt, readIp, readText, text } from '../../../../protocols/dhcp/options.ts';
import { cidrContains, intToIp, ipToInt } from '../../../net/ipv4.ts';
import type { DhcpContext, Handler } from '../context.ts';
import type { LeaseTable } from '../leases.ts';

export interface LeaseHandlerOptions {
  readonly authoritative: boolean;
  readonly onError: (e: Error) => void;
}

/**
 * The lease state machine of RFC 2131 4.3: decides OFFER/ACK/NAK or silence,
 * and for an ACK arranges the durable write that must finish before it leaves.
 */
export function leaseHandler(leases: LeaseTable, opts: LeaseHandlerOptions): Handler {
  const nak = (ctx: DhcpContext, why: string): boolean => {
    if (!opts.authoritative) {
      ctx.trace?.push(`${why}: not authoritative, staying silent`);
      return false;
    }
    ctx.trace?.push(`NAK: ${why}`);
    ctx.replyType = MessageType.NAK;
    ctx.yiaddr = 0;
    ctx.leaseTime = 0;
    ctx.options.set(Opt.MESSAGE, text(why));
    return false;
  };

  const ackOrNak = (ctx: DhcpContext, ip: number, reserved: number | undefined): boolean => {
    const subnet = ctx.subnet!;
    const unavailable = leases.check(ip, ctx.clientKey, subnet, reserved, ctx.now);
    if (unavailable) return nak(ctx, `address ${intToIp(ip)} is not available to this client (${unavailable})`);
    ctx.replyType = MessageType.ACK;
    ctx.yiaddr = ip;
    ctx.leaseTime = subnet.leaseTime;
    const hostname = readText(ctx.req.options.get(Opt.HOST_NAME));
    const clientId = ctx.req.options.get(Opt.CLIENT_ID);
    const lease = {
      mac: ctx.mac,
      subnet: subnet.cidr.text,
      expiresAt: ctx.now + subnet.leaseTime * 1000,
      ...(clientId ? { clientId: clientId.toString('hex') } : {}),
      ...(hostname ? { hostname } : {}),
      ...(ctx.node ? { node: ctx.node.name } : {}),
      ...(leases.shared ? { server: intToIp(ctx.serverId) } : {}),
    };
    ctx.commit = () => leases.bind(ip, lease, ctx.now);
    ctx.trace?.push(`ACK ${intToIp(ip)} for ${subnet.leaseTime}s`);
    return true;
  };

  return (ctx) => {
    const subnet = ctx.subnet!;
    const reserved = ctx.node ? ipToInt(ctx.node.ip) : undefined;
    const requested = readIp(ctx.req.options.get(Opt.REQUESTED_IP));
    switch (ctx.type) {
      case MessageType.DISCOVER: {
        const ip = leases.choose(ctx.clientKey, subnet, reserved, requested, ctx.now);
        if (ip === undefined) {
          ctx.trace?.push(`no address available in ${subnet.cidr.text}${subnet.pool ? ' (pool exhausted)' : ' (no pool; reservations only)'}: no offer`);
          return false;
        }
        leases.offer(ip, ctx.clientKey, ctx.now);
        ctx.replyType = MessageType.OFFER;
        ctx.yiaddr = ip;
        ctx.leaseTime = subnet.leaseTime;
        ctx.trace?.push(`OFFER ${intToIp(ip)}${reserved !== undefined ? ' (reservation)' : ''}`);
        // Shared store: a pool address is the store's to give, so it is claimed first (a reservation is one node's by the model).
        if (leases.shared && reserved === undefined && !leases.heldBy(ip, ctx.clientKey, ctx.now)) {
          const clientId = ctx.req.options.get(Opt.CLIENT_ID);
          const fields = { mac: ctx.mac, subnet: subnet.cidr.text, server: intToIp(ctx.serverId), ...(clientId ? { clientId: clientId.toString('hex') } : {}) };
          ctx.claim = () => leases.claimOffer(ip, fields, subnet, requested, ctx.now);
          ctx.trace?.push(`claiming ${intToIp(ip)} in the shared store before the OFFER leaves`);
        }
        return true;
      }
      case MessageType.REQUEST: {
        const serverId = readIp(ctx.req.options.get(Opt.SERVER_ID));
        if (serverId !== undefined) {
          // SELECTING: the client answers an OFFER; only the chosen server replies.
          if (serverId !== ctx.serverId) {
            leases.withdrawOffer(ctx.clientKey);
            const held = ctx.trace && leases.shared ? leases.leaseOfClient(ctx.clientKey) : undefined;
            ctx.trace?.push(`client chose server ${intToIp(serverId)}, not us: offer withdrawn${held?.server ? ` (the store: ${held.ip} ${held.state} by head ${held.server})` : ''}`);
            return false;
          }
          if (requested === undefined) return nak(ctx, 'REQUEST names our server but no requested address (option 50)');
          return ackOrNak(ctx, requested, reserved);
        }
        if (requested !== undefined) {
          // INIT-REBOOT: the client verifies an address it remembers.
          if (!cidrContains(subnet.cidr, requested)) return nak(ctx, `requested address ${intToIp(requested)} is not on network ${subnet.cidr.text}`);
          const remembered = leases.leaseOfClient(ctx.clientKey);
          if (reserved !== requested && remembered?.ip !== intToIp(requested)) return nak(ctx, `no lease of ${intToIp(requested)} for this client`);
          return ackOrNak(ctx, requested, reserved);
        }
        // RENEWING (unicast) or REBINDING (broadcast): the address is in ciaddr.
        if (!ctx.req.ciaddr) {
          ctx.trace?.push('REQUEST without server id, requested address or ciaddr: malformed, dropped');
          return false;
        }
        return ackOrNak(ctx, ctx.req.ciaddr, reserved);
      }
      case MessageType.DECLINE: {
        const serverId = readIp(ctx.req.options.get(Opt.SERVER_ID));
        if (requested === undefined || (serverId !== undefined && serverId !== ctx.serverId)) return false;
        ctx.trace?.push(`DECLINE of ${intToIp(requested)}: quarantined`);
        leases.decline(requested, ctx.clientKey, ctx.mac, subnet, ctx.now).catch(opts.onError);
        return false;
      }
      case MessageType.RELEASE: {
        const lease = leases.lease(ctx.req.ciaddr);
        if (lease && lease.mac === ctx.mac) {
          ctx.trace?.push(`RELEASE of ${lease.ip}`);
          leases.release(ctx.req.ciaddr, ctx.now).catch(opts.onError);
        }
        return false;
      }
      case MessageType.INFORM: {
        // The client has an address (configured by hand) and wants only parameters.
        ctx.replyType = MessageType.ACK;
        ctx.yiaddr = 0;
        ctx.leaseTime = 0;
        ctx.trace?.push('INFORM: parameters only, no lease');
        return true;
      }
      default:
        ctx.trace?.push(`message type ${ctx.type} is not a client message: dropped`);
        return false;
    }
  };
}
