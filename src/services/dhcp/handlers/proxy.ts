import { MessageType, Opt, readIp, readSubOptions, readText } from '../../../../protocols/dhcp/options.ts';
import type { LearnedAddress, NodeRecord } from '../../../cluster/types.ts';
import { intToIp } from '../../../net/ipv4.ts';
import { dropped, type Handler } from '../context.ts';

/** What the proxy learns: a node was seen at an address (its REQUEST to the site's server, or to the PXE boot server). */
export type LearnAddress = (node: NodeRecord, ip: number, from: LearnedAddress['from'], now: number) => void;

/**
 * proxyDHCP (PXE 2.1, 2.2.5 and 2.2.6) on a `mode: proxy` subnet: the site's
 * DHCP server gives the address; bootherd answers only a booting client
 * (vendor class PXEClient or HTTPClient; iPXE sends PXEClient too) and never
 * with an address. A DISCOVER gets a proxy OFFER; the firmware's REQUEST to
 * port 4011, sent once the site's server ACKed, gets an ACK with the boot
 * file. The boot handler fills in the file, as for server mode.
 */
export function proxyDecision(learn: LearnAddress): Handler {
  return (ctx) => {
    if (ctx.subnet!.mode !== 'proxy') {
      // Port 4011 belongs to proxy subnets: a server-mode client has its boot file in its ACK already.
      return ctx.bootServer ? dropped(ctx, 'proxy-not-proxy-subnet', `request to the PXE boot server port from ${ctx.subnet!.cidr.text}, a mode: server subnet: dropped`) : true;
    }
    const vendor = readText(ctx.req.options.get(Opt.VENDOR_CLASS));
    if (vendor === undefined) return dropped(ctx, 'proxy-no-vendor-class', 'proxy subnet: no vendor class (option 60), so not a booting client; the site\'s DHCP server answers it');
    if (!vendor.startsWith('PXEClient') && !vendor.startsWith('HTTPClient')) {
      return dropped(ctx, 'proxy-foreign-vendor-class', `proxy subnet: vendor class ${JSON.stringify(vendor.slice(0, 64))} is not PXEClient or HTTPClient; the site's DHCP server answers it`);
    }
    const vendorOptions = ctx.req.options.get(Opt.VENDOR_SPECIFIC);
    if (vendorOptions && !readSubOptions(vendorOptions)) return dropped(ctx, 'proxy-bad-vendor-options', 'proxy subnet: option 43 (PXE vendor options) does not frame as sub-options (truncated): dropped');
    const from = ctx.bootServer;
    if (from) {
      if (ctx.type !== MessageType.REQUEST && ctx.type !== MessageType.INFORM) {
        return dropped(ctx, 'proxy-not-booting', `message type ${ctx.type} to the PXE boot server port: only REQUEST (or INFORM) is answered`);
      }
      const ip = ctx.req.ciaddr || from.address;
      ctx.replyType = MessageType.ACK;
      ctx.trace?.push(`PXE boot server (port 4011): ACK with the boot file, to ${intToIp(from.address)}:${from.port}; the client is at ${intToIp(ip)} (${ctx.req.ciaddr ? 'ciaddr' : 'source address'})`);
      const node = ctx.node;
      if (node) ctx.after.push(() => learn(node, ip, 'pxe-request', ctx.now));
      return true;
    }
    switch (ctx.type) {
      case MessageType.DISCOVER:
        ctx.replyType = MessageType.OFFER;
        ctx.trace?.push('proxy OFFER: no address (the site\'s DHCP server gives it), only the boot file');
        return true;
      case MessageType.REQUEST: {
        // The REQUEST that follows the OFFERs is for an address, which is the site's server's to ACK; the boot
        // file, once the client has its address, is asked of port 4011. (A client that took the proxy OFFER
        // for an address offer and asks us for 0.0.0.0 must not be ACKed.)
        const serverId = readIp(ctx.req.options.get(Opt.SERVER_ID));
        if (serverId === ctx.serverId) return dropped(ctx, 'proxy-not-booting', 'proxy subnet: REQUEST naming us on port 67: we give no address; the boot file is asked of port 4011');
        // It names the address the site's server offered: TFTP and HTTP know the node by it before iPXE runs.
        const requested = readIp(ctx.req.options.get(Opt.REQUESTED_IP));
        const node = ctx.node;
        if (node && requested !== undefined && serverId !== undefined) {
          ctx.after.push(() => learn(node, requested, 'dhcp-request', ctx.now));
          ctx.trace?.push(`node ${node.name} asks the site's server for ${intToIp(requested)}: learned`);
        }
        return dropped(ctx, 'other-server', `proxy subnet: REQUEST for ${serverId === undefined ? 'no server' : `server ${intToIp(serverId)}`}; the site's DHCP server answers it`);
      }
      default:
        return dropped(ctx, 'proxy-not-booting', `proxy subnet: message type ${ctx.type} is the site's DHCP server's to answer`);
    }
  };
}
