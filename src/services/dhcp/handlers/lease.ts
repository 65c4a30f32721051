import { MessageType, Opt, readIp, readSubOption, readText, text } from '../../../../protocols/dhcp/options.ts';
import type { Subnet } from '../../../cluster/model.ts';
import { cidrContains, intToIp, ipToInt } from '../../../net/ipv4.ts';
import { dropped, type DhcpContext, type Handler } from '../context.ts';
import { portKeyOf, type LeaseLimits, type LeaseTable, type LimitName, type Placement, type PlacementFields } from '../leases.ts';

/** Option 82 sub-options (RFC 3046): the relay port the request came in on, and the relay (switch) itself. */
const CIRCUIT_ID = 1;
const REMOTE_ID = 2;

export interface LeaseHandlerOptions {
  readonly authoritative: boolean;
  readonly onError: (e: Error) => void;
  readonly limits: LeaseLimits;
  /** A new lease refused by a limit (counted by limit). */
  readonly refused: (limit: LimitName) => void;
}

/** Option 82's circuit and remote ids as hex, when the request carries them. */
function portIds(agent: Buffer | undefined): Pick<PlacementFields, 'circuitId' | 'remoteId'> {
  const circuit = readSubOption(agent, CIRCUIT_ID);
  const remote = readSubOption(agent, REMOTE_ID);
  return { circuitId: circuit?.length ? circuit.toString('hex') : undefined, remoteId: remote?.length ? remote.toString('hex') : undefined };
}

/** Where the client is, for the lease record: the relay or the interface, and the relay port. */
function placementFields(ctx: DhcpContext): PlacementFields {
  const agent = ctx.req.options.get(Opt.RELAY_AGENT);
  const ids = agent ? portIds(agent) : undefined;
  return {
    relay: ctx.req.giaddr ? intToIp(ctx.req.giaddr) : undefined,
    interface: ctx.req.giaddr ? undefined : ctx.iface,
    circuitId: ids?.circuitId,
    remoteId: ids?.remoteId,
  };
}

function placementOf(ctx: DhcpContext, limits: LeaseLimits): Placement {
  const agent = limits.perPort !== undefined ? ctx.req.options.get(Opt.RELAY_AGENT) : undefined;
  const ids = agent ? portIds(agent) : undefined;
  const port = ids && (ids.circuitId || ids.remoteId)
    ? portKeyOf({ relay: ctx.req.giaddr ? intToIp(ctx.req.giaddr) : undefined, interface: ctx.iface, ...ids })
    : undefined;
  return { relay: ctx.req.giaddr, iface: ctx.iface, port };
}

function inPool(subnet: Subnet, ip: number): boolean {
  return subnet.pool !== undefined && ip >= subnet.pool.start && ip <= subnet.pool.end;
}

/**
 * The lease state machine of RFC 2131 4.3: decides OFFER/ACK/NAK or silence,
 * and for an ACK arranges the durable write that must finish before it leaves.
 */
export function leaseHandler(leases: LeaseTable, opts: LeaseHandlerOptions): Handler {
  const limited = opts.limits.perPort !== undefined || opts.limits.perRelay !== undefined || opts.limits.perInterface !== undefined;
  /** The limit a new pool lease of `ip` would pass; reservations are not limited. */
  const overLimit = (ctx: DhcpContext, ip: number, reserved: number | undefined): LimitName | undefined => {
    if (!limited || reserved !== undefined) return undefined;
    const over = leases.overLimit(ip, placementOf(ctx, opts.limits), ctx.now);
    if (over) opts.refused(over);
    return over;
  };

  const nak = (ctx: DhcpContext, why: string): boolean => {
    if (!opts.authoritative) return dropped(ctx, 'not-authoritative', `${why}: not authoritative, staying silent`);
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
    const over = overLimit(ctx, ip, reserved);
    if (over) return nak(ctx, `no new lease: the ${over} limit (dhcp.limits) is reached`);
    ctx.replyType = MessageType.ACK;
    ctx.yiaddr = ip;
    ctx.leaseTime = subnet.leaseTime;
    const hostname = readText(ctx.req.options.get(Opt.HOST_NAME));
    const clientId = ctx.req.options.get(Opt.CLIENT_ID);
    // Absent fields are undefined (JSON leaves them out): one object of one shape per lease.
    const lease = {
      mac: ctx.mac,
      subnet: subnet.cidr.text,
      expiresAt: ctx.now + subnet.leaseTime * 1000,
      clientId: clientId ? clientId.toString('hex') : undefined,
      hostname: hostname || undefined,
      node: ctx.node?.name,
      ...placementFields(ctx),
      ...(leases.shared ? { server: intToIp(ctx.serverId) } : {}),
    };
    ctx.commit = () => leases.bind(ip, lease, ctx.now);
    ctx.trace?.push(`ACK ${intToIp(ip)} for ${subnet.leaseTime}s`);
    return true;
  };

  return (ctx) => {
    const subnet = ctx.subnet!;
    const reserved = ctx.node?.ip !== undefined ? ipToInt(ctx.node.ip) : undefined;
    const requested = readIp(ctx.req.options.get(Opt.REQUESTED_IP));
    switch (ctx.type) {
      case MessageType.DISCOVER: {
        const ip = leases.choose(ctx.clientKey, subnet, reserved, requested, ctx.now);
        if (ip === undefined) {
          return dropped(ctx, subnet.pool ? 'pool-exhausted' : 'no-reservation',
            `no address available in ${subnet.cidr.text}${subnet.pool ? ' (pool exhausted)' : ' (no pool; reservations only)'}: no offer`);
        }
        const over = overLimit(ctx, ip, reserved);
        if (over) return dropped(ctx, `limit-${over}`, `no new lease: the ${over} limit (dhcp.limits) is reached: no offer`);
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
            return dropped(ctx, 'other-server', `client chose server ${intToIp(serverId)}, not us: offer withdrawn${held?.server ? ` (the store: ${held.ip} ${held.state} by head ${held.server})` : ''}`);
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
        if (!ctx.req.ciaddr) return dropped(ctx, 'request-without-address', 'REQUEST without server id, requested address or ciaddr: malformed, dropped');
        return ackOrNak(ctx, ctx.req.ciaddr, reserved);
      }
      case MessageType.DECLINE: {
        // Only the client an address is bound to may say it is in use: anyone else could quarantine the pool or end a lease.
        const serverId = readIp(ctx.req.options.get(Opt.SERVER_ID));
        if (requested === undefined) return dropped(ctx, 'decline-without-address', 'DECLINE without a requested address (option 50): dropped');
        if (serverId !== undefined && serverId !== ctx.serverId) return dropped(ctx, 'other-server', `DECLINE for server ${intToIp(serverId)}, not us: dropped`);
        if (!inPool(subnet, requested)) return dropped(ctx, 'decline-outside-pool', `DECLINE of ${intToIp(requested)}, not in the pool of ${subnet.cidr.text}: dropped`);
        const clientId = ctx.req.options.get(Opt.CLIENT_ID);
        if (!leases.holds(requested, ctx.clientKey, clientId, ctx.now)) {
          return dropped(ctx, 'decline-not-holder', `DECLINE of ${intToIp(requested)}, which is not bound to this client (MAC and client id): dropped`);
        }
        const quarantine = !leases.quarantineFull(subnet, ctx.now);
        const holder = { mac: ctx.mac, clientId: clientId?.toString('hex'), ...placementFields(ctx) };
        leases.decline(requested, holder, subnet, quarantine, ctx.now).catch(opts.onError);
        if (!quarantine) return dropped(ctx, 'quarantine-full', `DECLINE of ${intToIp(requested)}: lease ended, but DECLINEs hold their share of the pool already: not quarantined`);
        ctx.trace?.push(`DECLINE of ${intToIp(requested)}: quarantined`);
        return false;
      }
      case MessageType.RELEASE: {
        // DHCPv4 cannot authenticate a RELEASE; as Kea does, it must at least match the lease's address, MAC and client id.
        const serverId = readIp(ctx.req.options.get(Opt.SERVER_ID));
        if (serverId !== undefined && serverId !== ctx.serverId) return dropped(ctx, 'other-server', `RELEASE for server ${intToIp(serverId)}, not us: dropped`);
        const ip = ctx.req.ciaddr;
        if (!leases.holds(ip, ctx.clientKey, ctx.req.options.get(Opt.CLIENT_ID), ctx.now)) {
          return dropped(ctx, 'release-not-holder', `RELEASE of ${intToIp(ip)}, which is not bound to this client (MAC and client id): dropped`);
        }
        ctx.trace?.push(`RELEASE of ${intToIp(ip)}`);
        leases.release(ip, ctx.now).catch(opts.onError);
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
        return dropped(ctx, 'not-client-message', `message type ${ctx.type} is not a client message: dropped`);
    }
  };
}
