import { MessageType, Opt, readText, readU16List, readUserClasses, text } from '../../../../protocols/dhcp/options.ts';
import type { ClusterModel } from '../../../cluster/model.ts';
import type { BootTimelines } from '../../../cluster/timeline.ts';
import { intToIp } from '../../../net/ipv4.ts';
import { decideBoot, type BootDecision, type BootRequest } from '../boot.ts';
import { dropped, type DhcpContext, type Handler } from '../context.ts';
import { OptionBytes } from '../option-bytes.ts';

/** PXE vendor options (option 43): discovery control = 8, "boot from the file name, skip boot server discovery". */
const PXE_VENDOR_OPTIONS = Buffer.from([6, 1, 8, 255]);
const PXE_CLIENT = text('PXEClient');
const HTTP_CLIENT = text('HTTPClient');

/** Whether the request comes from iPXE: its own option 175, or user class "iPXE" (RFC 3004). */
export function fromIpxe(options: ReadonlyMap<number, Buffer>): boolean {
  return options.has(Opt.IPXE) || readUserClasses(options.get(Opt.USER_CLASS)).includes('iPXE');
}

export function bootRequestOf(ctx: Pick<DhcpContext, 'req' | 'mac'>): BootRequest {
  const o = ctx.req.options;
  return {
    vendorClass: readText(o.get(Opt.VENDOR_CLASS)),
    arch: readU16List(o.get(Opt.CLIENT_ARCH))[0],
    isIpxe: fromIpxe(o),
    mac: ctx.mac,
  };
}

/** Fills next-server, boot file and the PXE options from the boot decision; records the boot timeline. */
export function bootOptions(model: ClusterModel, httpBase: string, bootUnknown: boolean, timelines: BootTimelines | undefined): Handler {
  // Option 66 by server address, and option 67 of the TFTP loaders: the same few values in every reply.
  const tftpServer = new OptionBytes((ip: number) => text(intToIp(ip)));
  const loaderFile = new OptionBytes(text);
  return (ctx) => {
    if (ctx.type === MessageType.INFORM) return true;
    const request = bootRequestOf(ctx);
    const profile = ctx.node ? model.profileOf(ctx.node) : model.profile('default')!;
    const decision: BootDecision = decideBoot(request, { profile, httpBase, bootUnknown, known: ctx.node !== undefined });
    ctx.trace?.push(`boot: ${decision.why}`);
    const o = ctx.options;
    const uuid = ctx.req.options.get(Opt.CLIENT_UUID);
    const proxy = ctx.subnet!.mode === 'proxy';
    switch (decision.kind) {
      case 'none':
        if (!proxy) return true;
        // A proxy reply is only boot options: with none to give there is nothing to say.
        ctx.replyType = undefined;
        return dropped(ctx, 'proxy-not-booting', 'proxy subnet: no boot file for this client: no reply');
      case 'tftp':
        ctx.siaddr = ctx.serverId;
        ctx.file = decision.file;
        o.set(Opt.TFTP_SERVER, tftpServer.of(ctx.serverId));
        o.set(Opt.BOOTFILE, loaderFile.of(decision.file));
        o.set(Opt.VENDOR_CLASS, PXE_CLIENT);
        o.set(Opt.VENDOR_SPECIFIC, PXE_VENDOR_OPTIONS);
        break;
      case 'http':
        ctx.file = decision.url;
        o.set(Opt.BOOTFILE, text(decision.url));
        o.set(Opt.VENDOR_CLASS, HTTP_CLIENT);
        break;
      case 'script':
        ctx.siaddr = ctx.serverId;
        ctx.file = decision.url;
        o.set(Opt.BOOTFILE, text(decision.url));
        // iPXE takes an OFFER without an address as a proxy offer only when it says PXEClient.
        if (proxy) { o.set(Opt.VENDOR_CLASS, PXE_CLIENT); o.set(Opt.VENDOR_SPECIFIC, PXE_VENDOR_OPTIONS); }
        break;
    }
    if (uuid) o.set(Opt.CLIENT_UUID, uuid);
    const node = ctx.node;
    if (!timelines) return true;
    const stage = ctx.replyType === MessageType.OFFER ? 'dhcp-offer' : 'dhcp-ack';
    const firmware = decision.kind === 'script' ? 'iPXE' : decision.firmware;
    if (!node) {
      const mac = ctx.mac;
      ctx.after.push(() => timelines.recordClient(mac, stage, ctx.now, firmware));
    } else {
      // On a proxy subnet the ACK with the boot file is the boot server's (4011), and names where the client is.
      const at = ctx.bootServer ? ctx.req.ciaddr || ctx.bootServer.address : 0;
      const detail = proxy ? `${firmware} proxy${at ? ` ${intToIp(at)}` : ''}` : firmware;
      ctx.after.push(() => {
        // A firmware DISCOVER begins a new boot; so does iPXE's when it is the
        // firmware (an iPXE ROM) and the last boot already finished.
        const current = timelines.get(node.name);
        const newBoot = stage === 'dhcp-offer' && (decision.kind !== 'script' || !current || current.stages.some((s) => s.stage === 'booted'));
        if (newBoot) timelines.start(node.name, stage, ctx.now, detail);
        else timelines.record(node.name, stage, ctx.now, detail);
      });
    }
    return true;
  };
}
