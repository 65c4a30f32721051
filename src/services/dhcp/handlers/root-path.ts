import { Opt, text } from '../../../../protocols/dhcp/options.ts';
import type { NodeRecord } from '../../../cluster/types.ts';
import type { Handler } from '../context.ts';

/**
 * Option 17 (root path, RFC 2132) for nodes whose root disk the head serves
 * over iSCSI, in RFC 4173's form iscsi:<server>::<port>:<lun>:<target>.
 * iPXE and dracut (netroot=dhcp) read it; it is sent only to clients that ask
 * for it in option 55. `rootPath` comes from the iSCSI service, which answers
 * undefined while iSCSI is off.
 */
export function rootPathOption(rootPath: (node: NodeRecord) => string | undefined): Handler {
  return (ctx) => {
    if (!ctx.node) return true;
    const p = rootPath(ctx.node);
    if (p) {
      ctx.options.set(Opt.ROOT_PATH, text(p));
      ctx.trace?.push(`root-path: ${p} (iSCSI root disk)`);
    }
    return true;
  };
}
