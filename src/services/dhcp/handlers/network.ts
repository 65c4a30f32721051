import { ipList, Opt, text, u32 } from '../../../../protocols/dhcp/options.ts';
import type { Handler } from '../context.ts';

/** Address, mask, router, DNS, domain, host name, NTP and the lease times (RFC 2132). */
export function networkOptions(domain: string): Handler {
  const domainBytes = text(domain);
  return (ctx) => {
    const subnet = ctx.subnet!;
    const o = ctx.options;
    if (ctx.leaseTime > 0) {
      o.set(Opt.LEASE_TIME, u32(ctx.leaseTime));
      o.set(Opt.RENEWAL_TIME, u32(Math.floor(ctx.leaseTime / 2)));
      o.set(Opt.REBINDING_TIME, u32(Math.floor((ctx.leaseTime * 7) / 8)));
    }
    o.set(Opt.SUBNET_MASK, u32(subnet.cidr.mask));
    if (subnet.router !== undefined) o.set(Opt.ROUTER, ipList([subnet.router]));
    if (subnet.dnsServers.length) o.set(Opt.DNS_SERVERS, ipList(subnet.dnsServers));
    o.set(Opt.DOMAIN_NAME, domainBytes);
    if (ctx.node) o.set(Opt.HOST_NAME, text(ctx.node.name));
    o.set(Opt.BROADCAST, u32(subnet.broadcast));
    if (subnet.ntpServers.length) o.set(Opt.NTP_SERVERS, ipList(subnet.ntpServers));
    return true;
  };
}
