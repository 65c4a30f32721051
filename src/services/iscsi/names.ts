/**
 * Names and boot parameters of iSCSI root disks, derived from the cluster
 * model alone (pure), so that the iSCSI service, DHCP (option 17) and the
 * iPXE script renderer all agree on them.
 *
 * Naming rule (RFC 3720 "iqn." names, the naming authority being the
 * cluster's domain, reversed; the date is fixed at 2024-01 because an IQN
 * must not change once a node has booted with it):
 *   target of node n001 in cluster.local:  iqn.2024-01.local.cluster.bootherd:n001
 *   its initiator (the node itself):       iqn.2024-01.local.cluster:n001
 * Targets under the first prefix are bootherd's own; nothing else is ever
 * changed. Both prefixes can be set in the iscsi: section.
 */
import path from 'node:path';
import type { ClusterModel } from '../../cluster/model.ts';
import type { NodeRecord, RootDisk } from '../../cluster/types.ts';
import type { Config } from '../../config/load.ts';
import { devicePath } from '../../config/root-disk.ts';
import { ACCOUNT_PREFIX } from './chap.ts';
import type { ChapCredentials, DesiredExport, DesiredState, Portal } from './state.ts';

export const IQN_DATE = '2024-01';
/** LIO storage objects bootherd makes are named bootherd-<node>. */
export const BACKSTORE_PREFIX = 'bootherd-';

export function reverseDomain(domain: string): string {
  return domain.toLowerCase().split('.').filter(Boolean).reverse().join('.');
}

export interface IscsiNaming {
  readonly targetPrefix: string;
  readonly initiatorPrefix: string;
  readonly portal: Portal;
  /** Absolute directory of the per-node disk copies. */
  readonly disksDir: string;
  /** Absolute directory relative image paths are resolved from (the cluster file's). */
  readonly baseDir: string;
}

export function namingOf(config: Config): IscsiNaming {
  const rev = reverseDomain(config.cluster.domain);
  const baseDir = config.source.startsWith('<') ? process.cwd() : path.dirname(config.source);
  const c = config.iscsi;
  return {
    targetPrefix: c.targetPrefix ?? `iqn.${IQN_DATE}.${rev}.bootherd:`,
    initiatorPrefix: c.initiatorPrefix ?? `iqn.${IQN_DATE}.${rev}:`,
    portal: { address: c.portal ?? config.head.address, port: c.port },
    disksDir: c.disks ? path.resolve(baseDir, c.disks) : path.join(config.stateDir, 'iscsi'),
    baseDir,
  };
}

/** The node's own root disk, else its profile's. */
export function rootOf(model: ClusterModel, node: NodeRecord): RootDisk | undefined {
  return node.root ?? model.profileOf(node).root;
}

/** A node's export as far as names go (no address, no credentials): what status() shows. */
export type ExportName = Omit<DesiredExport, 'address' | 'chap'>;

export function exportOf(naming: IscsiNaming, node: string, root: RootDisk): ExportName {
  return {
    node,
    iqn: `${naming.targetPrefix}${node}`,
    initiator: `${naming.initiatorPrefix}${node}`,
    disk: root.disk === 'block'
      ? { kind: 'block', path: path.resolve('/', devicePath(root, node)) }
      : { kind: 'file', path: path.join(naming.disksDir, `${node}.img`) },
  };
}

/** Every node with an iSCSI root, by name. */
export function iscsiNodes(model: ClusterModel): Array<{ readonly node: NodeRecord; readonly root: RootDisk }> {
  const out: Array<{ node: NodeRecord; root: RootDisk }> = [];
  for (const node of model.nodes()) {
    const root = rootOf(model, node);
    if (root?.kind === 'iscsi') out.push({ node, root });
  }
  return out.sort((a, b) => (a.node.name < b.node.name ? -1 : a.node.name > b.node.name ? 1 : 0));
}

/** Every export the cluster model asks for, read live from the model; `chapOf` gives each node's credentials. */
export function desiredState(model: ClusterModel, naming: IscsiNaming, chapOf: (node: string) => ChapCredentials): DesiredState {
  // A node on a proxy subnet is exported once its address is known (the model's change reruns this).
  const exports = iscsiNodes(model).flatMap(({ node, root }): DesiredExport[] => (node.ip === undefined ? [] : [{ ...exportOf(naming, node.name, root), address: node.ip, chap: chapOf(node.name) }]));
  return { exports, portal: naming.portal, targetPrefix: naming.targetPrefix, backstorePrefix: BACKSTORE_PREFIX, accountPrefix: ACCOUNT_PREFIX };
}

/** iPXE's CHAP settings, expanded by iPXE on the kernel line. */
export const IPXE_CHAP = '${username}:${password}:${reverse-username}:${reverse-password}';

export interface IscsiBootParams {
  readonly targetIqn: string;
  readonly initiatorIqn: string;
  readonly portal: Portal;
  readonly lun: number;
  /** RFC 4173 root path, for DHCP option 17 and iPXE sanboot: iscsi:<server>:<protocol>:<port>:<lun>:<target>. */
  readonly rootPath: string;
  /** sanboot: iPXE attaches the disk and boots it, leaving an iBFT for the OS; kernel: the profile's kernel with kernelArgs (the node's iPXE template has the lines). */
  readonly boot: RootDisk['boot'];
  /** Kernel parameters for boot: kernel (dracut's iSCSI root); the profile's cmdline says which root= partition. */
  readonly kernelArgs: string;
}

/**
 * How a node finds its root disk, or undefined when it has none. `lun` is the
 * active backend's (0 on LIO, 1 on tgt): IscsiService.bootParams() fills it in.
 */
export function iscsiBootParams(model: ClusterModel, naming: IscsiNaming, node: NodeRecord, lun: number): IscsiBootParams | undefined {
  const root = rootOf(model, node);
  if (root?.kind !== 'iscsi') return undefined;
  const e = exportOf(naming, node.name, root);
  // RFC 4173: protocol empty means TCP; the LUN is written in hex.
  const rootPath = `iscsi:${naming.portal.address}::${naming.portal.port}:${lun.toString(16)}:${e.iqn}`;
  return {
    targetIqn: e.iqn,
    initiatorIqn: e.initiator,
    portal: naming.portal,
    lun,
    rootPath,
    boot: root.boot,
    // dracut's netroot=iscsi:<user>:<password>:<reverse user>:<reverse password>@...: iPXE fills in its
    // CHAP settings, which only the script served to the node's own address sets (src/boot/ipxe-script.ts).
    kernelArgs: `ip=dhcp rd.iscsi.initiator=${e.initiator} netroot=iscsi:${IPXE_CHAP}@${rootPath.slice('iscsi:'.length)}`,
  };
}
