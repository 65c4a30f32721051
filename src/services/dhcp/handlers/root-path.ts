import { Opt, text } from '../../../../protocols/dhcp/options.ts';
import type { NodeRecord } from '../../../cluster/types.ts';
import type { Handler } from '../context.ts';
import { fromIpxe } from './boot.ts';

/**
 * Option 17 (root path, RFC 2132) for nodes whose root disk the head serves
 * over iSCSI, in RFC 4173's form iscsi:<server>::<port>:<lun>:<target>.
 * dracut (netroot=dhcp) and other OS clients read it; it is sent only to
 * clients that ask for it in option 55. `rootPath` comes from the iSCSI
 * service, which answers undefined while iSCSI is off.
 *
 * Not to iPXE, although it asks: iPXE's autoboot hooks a root path before it
 * fetches its script, with its default initiator name (iqn.2010-04.org.ipxe:
 * <host name>), which the node's ACL refuses (tgt answers "target not
 * found"), and then gives up without running the script. The script sets the
 * node's initiator name and sanboots the same path itself.
 */
export function rootPathOption(rootPath: (node: NodeRecord) => string | undefined): Handler {
  return (ctx) => {
    if (!ctx.node) return true;
    const p = rootPath(ctx.node);
    if (!p) return true;
    if (fromIpxe(ctx.req.options)) {
      ctx.trace?.push(`root-path: not to iPXE (its script sanboots ${p} with the node's initiator name)`);
      return true;
    }
    ctx.options.set(Opt.ROOT_PATH, text(p));
    ctx.trace?.push(`root-path: ${p} (iSCSI root disk)`);
    return true;
  };
}
