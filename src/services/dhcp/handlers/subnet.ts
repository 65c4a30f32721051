import type { ClusterModel, Subnet } from '../../../cluster/model.ts';
import { intToIp } from '../../../net/ipv4.ts';
import type { Handler } from '../context.ts';

/**
 * Selects the subnet a request belongs to (RFC 2131 4.3.1): the relay's
 * (giaddr) when relayed, the client's own (ciaddr) when it renews by unicast,
 * else the subnet of the interface it arrived on. Requests from a network we
 * do not serve are dropped.
 */
export function selectSubnet(model: ClusterModel, serverIdOf: (s: Subnet) => number): Handler {
  return (ctx) => {
    const { giaddr, ciaddr } = ctx.req;
    let subnet: Subnet | undefined;
    let why: string;
    if (giaddr) {
      subnet = model.subnetForIp(giaddr);
      why = `relayed by ${intToIp(giaddr)}`;
    } else if ((ciaddr || ctx.bootServer) && !ctx.iface) {
      const client = ciaddr || ctx.bootServer!.address;
      subnet = model.subnetForIp(client);
      why = `client address ${intToIp(client)}${ciaddr ? '' : ' (source of its request to the PXE boot server)'}`;
    } else {
      subnet = ctx.iface ? model.subnetForInterface(ctx.iface) : undefined;
      why = `arrived on interface ${ctx.iface ?? '(unknown)'}`;
      // A renewing client on a directly attached subnet must be on that subnet.
      if (subnet && ciaddr && model.subnetForIp(ciaddr) !== subnet) subnet = model.subnetForIp(ciaddr);
    }
    if (!subnet) {
      ctx.drop = 'no-subnet';
      ctx.trace?.push(`no subnet serves this request (${why}): dropped`);
      return false;
    }
    ctx.subnet = subnet;
    ctx.serverId = serverIdOf(subnet);
    ctx.trace?.push(`subnet ${subnet.cidr.text} (${why})`);
    return true;
  };
}
