import { ipList, Opt, text, u32 } from '../../../../protocols/dhcp/options.ts';
import type { Subnet } from '../../../cluster/model.ts';
import type { Handler } from '../context.ts';

/** The option bytes that depend only on the subnet, encoded once rather than per packet. */
interface SubnetOptions {
  readonly leaseTime: number;
  readonly lease: Buffer;
  readonly renewal: Buffer;
  readonly rebinding: Buffer;
  readonly mask: Buffer;
  readonly router: Buffer | undefined;
  readonly dns: Buffer | undefined;
  readonly broadcast: Buffer;
  readonly ntp: Buffer | undefined;
}

function encodeSubnet(subnet: Subnet): SubnetOptions {
  const t = subnet.leaseTime;
  return {
    leaseTime: t,
    lease: u32(t),
    renewal: u32(Math.floor(t / 2)),
    rebinding: u32(Math.floor((t * 7) / 8)),
    mask: u32(subnet.cidr.mask),
    router: subnet.router !== undefined ? ipList([subnet.router]) : undefined,
    dns: subnet.dnsServers.length ? ipList(subnet.dnsServers) : undefined,
    broadcast: u32(subnet.broadcast),
    ntp: subnet.ntpServers.length ? ipList(subnet.ntpServers) : undefined,
  };
}

/** Address, mask, router, DNS, domain, host name, NTP and the lease times (RFC 2132). */
export function networkOptions(domain: string): Handler {
  const domainBytes = text(domain);
  const cache = new WeakMap<Subnet, SubnetOptions>();
  return (ctx) => {
    const subnet = ctx.subnet!;
    let s = cache.get(subnet);
    if (!s) { s = encodeSubnet(subnet); cache.set(subnet, s); }
    const o = ctx.options;
    if (ctx.leaseTime > 0) {
      const same = ctx.leaseTime === s.leaseTime;
      o.set(Opt.LEASE_TIME, same ? s.lease : u32(ctx.leaseTime));
      o.set(Opt.RENEWAL_TIME, same ? s.renewal : u32(Math.floor(ctx.leaseTime / 2)));
      o.set(Opt.REBINDING_TIME, same ? s.rebinding : u32(Math.floor((ctx.leaseTime * 7) / 8)));
    }
    o.set(Opt.SUBNET_MASK, s.mask);
    if (s.router) o.set(Opt.ROUTER, s.router);
    if (s.dns) o.set(Opt.DNS_SERVERS, s.dns);
    o.set(Opt.DOMAIN_NAME, domainBytes);
    if (ctx.node) o.set(Opt.HOST_NAME, text(ctx.node.name));
    o.set(Opt.BROADCAST, s.broadcast);
    if (s.ntp) o.set(Opt.NTP_SERVERS, s.ntp);
    return true;
  };
}
