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
    if (!cidrContains(ctx.subnet!.cidr, ipToInt(node.ip))) {
      ctx.trace?.push(`MAC ${ctx.mac} is node ${node.name}, but its address ${node.ip} is not on ${ctx.subnet!.cidr.text}: treated as unknown here`);
      return true;
    }
    ctx.node = node;
    ctx.trace?.push(`MAC ${ctx.mac} is node ${node.name} (profile ${node.profile}, reserved ${node.ip})`);
    return true;
  };
}
