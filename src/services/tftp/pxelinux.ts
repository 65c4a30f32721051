/**
 * pxelinux.cfg/01-<mac>: the per-node PXELINUX configuration, rendered from
 * the node's profile (kernel, initrds, command line) on every request, so it
 * follows the cluster model at once. Kernel and initrds are HTTP URLs
 * (lpxelinux.0 fetches them over HTTP, far faster than TFTP).
 *
 * Only MACs of known nodes are answered here; other names under
 * pxelinux.cfg/ (an administrator's `default`, unknown MACs) fall through to
 * the directories, where PXELINUX's usual search finds them.
 */
import type { ClusterModel } from '../../cluster/model.ts';
import type { NodeRecord } from '../../cluster/types.ts';
import { fileUrl } from '../../cluster/urls.ts';
import type { RenderedFile } from './resolver.ts';

/** ARP hardware type 1 (Ethernet), then the MAC with dashes, as PXELINUX asks for it. */
const NAME = /^pxelinux\.cfg\/01-([0-9a-f]{2}(?:-[0-9a-f]{2}){5})$/i;

export class PxelinuxConfigs implements RenderedFile {
  readonly label = 'pxelinux';

  constructor(private readonly model: ClusterModel, private readonly httpBase: string) {}

  private nodeOf(name: string): NodeRecord | undefined {
    const m = NAME.exec(name);
    return m ? this.model.nodeByMac(m[1]!.toLowerCase().replace(/-/g, ':')) : undefined;
  }

  match(name: string): boolean {
    return this.nodeOf(name) !== undefined;
  }

  render(name: string): Buffer | undefined {
    const node = this.nodeOf(name);
    if (!node) return undefined;
    return Buffer.from(renderPxelinuxConfig(node, this.model, this.httpBase));
  }
}

export function renderPxelinuxConfig(node: NodeRecord, model: ClusterModel, httpBase: string): string {
  const p = model.profileOf(node);
  const lines = [
    `# Rendered by bootherd for node ${node.name} (profile ${p.name}) from the cluster model.`,
    `DEFAULT ${node.name}`,
    'PROMPT 0',
    'TIMEOUT 0',
    `LABEL ${node.name}`,
    `  KERNEL ${fileUrl(httpBase, p.kernel)}`,
  ];
  if (p.initrd.length) lines.push(`  INITRD ${p.initrd.map((f) => fileUrl(httpBase, f)).join(',')}`);
  if (p.cmdline) lines.push(`  APPEND ${p.cmdline}`);
  return lines.join('\n') + '\n';
}
