import type { ClusterModel } from '../../../cluster/model.ts';
import { cidrContains, ipToInt } from '../../../net/ipv4.ts';
import type { Handler } from '../context.ts';

/** Finds the node reserved for the client's MAC; a node whose address is on another subnet is not reserved here. */
export function matchNode(model: ClusterModel): Handler {
  return (ctx) => {
    const node = ctx.mac ? model.nodeByMac(ctx.mac) : undefined;
    if (!node) {
      ctx.trace?.push(`MAC ${ctx.mac || '(none)'} matches no node: dynamic pool`);
      return true;
    }
    if (ctx.subnet!.mode === 'proxy') {
      // The site's server gives the address; a node reserved elsewhere is not this network's.
      if (node.ip !== undefined && !node.learned) {
        ctx.trace?.push(`MAC ${ctx.mac} is node ${node.name}, but it is reserved ${node.ip} on a server-mode subnet: treated as unknown here`);
        return true;
      }
      ctx.node = node;
      ctx.trace?.push(`MAC ${ctx.mac} is node ${node.name} (profile ${node.profile}; address from the site's DHCP server${node.ip ? `, last seen at ${node.ip} by ${node.learned!.from}` : ''})`);
      return true;
    }
    if (node.ip === undefined || !cidrContains(ctx.subnet!.cidr, ipToInt(node.ip))) {
      ctx.trace?.push(`MAC ${ctx.mac} is node ${node.name}, but its address ${node.ip} is not on ${ctx.subnet!.cidr.text}: treated as unknown here`);
      return true;
    }
    ctx.node = node;
    ctx.trace?.push(`MAC ${ctx.mac} is node ${node.name} (profile ${node.profile}, reserved ${node.ip})`);
    return true;
  };
}
