/**
 * The lab's cluster file (the embedded default that `bootherd lab up` and
 * `bootherd demo` serve): a cluster that lives entirely inside the network
 * namespaces the lab creates, in 198.18.0.0/24, a benchmarking range that is
 * never routed. Nothing here can answer DHCP on a real network.
 *
 * Nodes n001..nNNN are the lab's VMs: MAC 52:54:00:b0:00:NN, address
 * 198.18.0.(10+N). Client namespaces (for dhclient and friends) and VMs
 * started with an unknown MAC get pool addresses and the discovery script.
 *
 * With iSCSI (`lab up --iscsi`), every node's root is a copy of the lab's
 * golden disk, exported by bootherd's tgt backend from the lab's tgtd, and
 * booted with the profile's kernel (`boot: kernel`): the kernel line gets the
 * root's dracut-style arguments and the second initrd holds iscsistart.
 *
 * With a site DHCP server (`lab up --proxy`), dnsmasq at LAB_SITE_ADDRESS
 * gives the addresses (each node's as a reservation of its own, the same
 * 198.18.0.(10+N)) and bootherd's subnet is `mode: proxy`: its nodes are
 * known by MAC only, and bootherd learns their addresses as they boot.
 *
 * With several heads (`lab up --heads 3`), head i is head<i> at 198.18.0.<i>,
 * every head runs its own etcd member (`store: { kind: etcd }`), and `head`
 * is a round-robin host name over all of them, so the name the nodes' init
 * and the SRV record use answers from every head.
 */
import { macFromBytes } from '../net/mac.ts';
import { intToIp, ipToInt } from '../net/ipv4.ts';

export const LAB_DOMAIN = 'lab.test';
export const LAB_HEAD_NAME = 'head';
export const LAB_HEAD_ADDRESS = '198.18.0.1';
export const LAB_POOL = ['198.18.0.100', '198.18.0.199'] as const;
export const LAB_SRV = { name: '_slurmctld._tcp', target: `${LAB_HEAD_NAME}.${LAB_DOMAIN}`, port: 6817 } as const;
/** Boot files, as named in the directory scripts/build-lab-image.sh fills. */
export const LAB_KERNEL = 'vmlinuz';
export const LAB_INITRD = 'initrd.img';
/** The second initrd of iSCSI-root nodes (iscsistart, SCSI/iSCSI/ext4 modules), and the golden root disk. */
export const LAB_ISCSI_INITRD = 'iscsi.img';
export const LAB_GOLDEN_IMAGE = 'golden.img';
/** The text of the golden disk's /etc/bootherd-golden, beside it in the image directory. */
export const LAB_GOLDEN_MARKER = 'golden.marker';
/** The profile of iSCSI-root nodes in a lab made with --iscsi. */
export const LAB_ISCSI_PROFILE = 'iscsi-root';
/** Most lab nodes a cluster file can hold: their addresses stop below the pool. */
export const LAB_MAX_NODES = 89;
/** Most heads a lab runs: their addresses 198.18.0.1-5 stop below the nodes'. */
export const LAB_MAX_HEADS = 5;
/** The site DHCP server of `lab up --proxy` (dnsmasq), above the pool and the heads. */
export const LAB_SITE_ADDRESS = '198.18.0.250';
/** A MAC no lab node has: `lab boot --mac` default for the discovery path. */
export const LAB_UNKNOWN_MAC = '52:54:00:ff:00:01';

export interface LabNode {
  readonly name: string;
  readonly mac: string;
  readonly ip: string;
}

export function labNode(i: number): LabNode {
  const n = i + 1;
  return {
    name: `n${String(n).padStart(3, '0')}`,
    mac: macFromBytes(Buffer.from([0x52, 0x54, 0x00, 0xb0, (n >> 8) & 255, n & 255])),
    ip: intToIp(ipToInt('198.18.0.10') + n),
  };
}

/** The lab node of that name (n001 is labNode(0)), if the name is one. */
export function labNodeNamed(name: string): LabNode | undefined {
  const m = /^n(\d{3})$/.exec(name);
  return m && Number(m[1]) >= 1 ? labNode(Number(m[1]) - 1) : undefined;
}

/** MAC of client namespace i: not a node, so it gets a pool address. */
export function labClientMac(i: number): string {
  return macFromBytes(Buffer.from([0x52, 0x54, 0x00, 0xc0, ((i + 1) >> 8) & 255, (i + 1) & 255]));
}

/** Head i (0-based) of a lab of `count` heads: a one-head lab's is `head` at 198.18.0.1, as before. */
export function labHead(i: number, count: number): { readonly name: string; readonly address: string } {
  return { name: count === 1 ? LAB_HEAD_NAME : `${LAB_HEAD_NAME}${i + 1}`, address: intToIp(ipToInt(LAB_HEAD_ADDRESS) + i) };
}

export interface LabClusterOptions {
  readonly stateDir: string;
  /** This head (0-based) of `count` heads sharing the cluster through their etcd members; default one head. */
  readonly heads?: { readonly self: number; readonly count: number };
  /** Where vmlinuz and initrd.img are (scripts/build-lab-image.sh's output). */
  readonly filesDir: string;
  readonly nodes: number;
  readonly logLevel?: string;
  /** Nodes' roots over iSCSI from the tgtd with this control port (the lab's, in the head namespace). */
  readonly iscsi?: { readonly tgtControlPort: number };
  /** Beside a site DHCP server (`lab up --proxy`): the subnet is mode: proxy and the nodes have no ip. */
  readonly proxy?: boolean;
}

/**
 * The kernel command line of lab nodes. loglevel=6 keeps the kernel's
 * informational chatter off the serial port (slow under TCG) but still shows
 * "Linux version"; panic=1 with QEMU's -no-reboot ends the VM on a panic;
 * bootherd_head is the head's host name for the init's DNS check.
 */
export const LAB_CMDLINE = `console=ttyS0 loglevel=6 panic=1 bootherd_head=${LAB_HEAD_NAME}`;

export function labClusterFile(opts: LabClusterOptions): string {
  if (opts.nodes < 0 || opts.nodes > LAB_MAX_NODES) throw new Error(`a lab holds 0 to ${LAB_MAX_NODES} nodes, not ${opts.nodes}`);
  const nodes = Array.from({ length: opts.nodes }, (_, i) => labNode(i));
  const count = opts.heads?.count ?? 1;
  const self = labHead(opts.heads?.self ?? 0, count);
  const all = Array.from({ length: count }, (_, i) => labHead(i, count));
  return `# bootherd lab cluster (embedded default; src/lab/cluster.ts)
cluster:
  name: lab
  domain: ${LAB_DOMAIN}
head:
  name: ${self.name}
  address: ${self.address}
${count > 1 ? `heads:
${all.map((h) => `  - { name: ${h.name}, address: ${h.address} }`).join('\n')}
# Every head runs its own etcd member; together they hold the records.
store: { kind: etcd }
# The name the nodes' init and the SRV record use, answered with every head's address.
hosts:
${all.map((h) => `  - { name: ${LAB_HEAD_NAME}, ip: ${h.address} }`).join('\n')}
` : ''}state: ${opts.stateDir}
files: ${opts.filesDir}
log:
  level: ${opts.logLevel ?? 'info'}
subnets:
  - network: 198.18.0.0/24
    interface: eth0
${opts.proxy ? `    # The site's DHCP server (dnsmasq at ${LAB_SITE_ADDRESS}) gives the addresses; bootherd only the boot files.
    mode: proxy
` : `    pool: ${LAB_POOL[0]}-${LAB_POOL[1]}
    leaseTime: 1h
`}# The lab reaches no time server: the head serves its own clock (the host's).
ntp:
  localStratum: 10
profiles:
  default:
    kernel: ${LAB_KERNEL}
    initrd: ${LAB_INITRD}
    cmdline: ${LAB_CMDLINE}
${opts.iscsi ? iscsiSections(opts.filesDir, opts.iscsi.tgtControlPort) : ''}nodes:${nodes.length ? '' : ' []'}
${nodes.map((n) => `  - { name: ${n.name}, macs: [${n.mac}]${opts.proxy ? '' : `, ip: ${n.ip}`}${opts.iscsi ? `, profile: ${LAB_ISCSI_PROFILE}` : ''} }`).join('\n')}
srv:
  - { name: ${LAB_SRV.name}, target: ${LAB_SRV.target}, port: ${LAB_SRV.port} }
`;
}

/** The iSCSI-root profile (under profiles:) and the iscsi: section of a lab made with --iscsi. */
function iscsiSections(filesDir: string, tgtControlPort: number): string {
  return `  # Root over iSCSI: the kernel line gets ip=dhcp rd.iscsi.initiator=... netroot=iscsi:...,
  # which the lab init reads; the second initrd brings iscsistart (scripts/build-lab-image.sh).
  ${LAB_ISCSI_PROFILE}:
    kernel: ${LAB_KERNEL}
    initrd: [${LAB_INITRD}, ${LAB_ISCSI_INITRD}]
    cmdline: ${LAB_CMDLINE}
    root: { kind: iscsi, image: ${filesDir}/${LAB_GOLDEN_IMAGE}, boot: kernel }
# The lab's tgtd in the head namespace (bootherd lab up --iscsi); each node gets a copy of the golden disk.
iscsi:
  backend: tgt
  images: ${filesDir}
  tgt: { controlPort: ${tgtControlPort} }
`;
}
