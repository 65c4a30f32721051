/**
 * The lab's cluster file (the embedded default that `bootherd lab up` and
 * `bootherd demo` serve): a cluster that lives entirely inside the network
 * namespaces the lab creates, in 198.18.0.0/24, a benchmarking range that is
 * never routed. Nothing here can answer DHCP on a real network.
 *
 * Nodes n001..nNNN are the lab's VMs: MAC 52:54:00:b0:00:NN, address
 * 198.18.0.(10+N). Client namespaces (for dhclient and friends) and VMs
 * started with an unknown MAC get pool addresses and the discovery script.
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
/** Most lab nodes a cluster file can hold: their addresses stop below the pool. */
export const LAB_MAX_NODES = 89;
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

/** MAC of client namespace i: not a node, so it gets a pool address. */
export function labClientMac(i: number): string {
  return macFromBytes(Buffer.from([0x52, 0x54, 0x00, 0xc0, ((i + 1) >> 8) & 255, (i + 1) & 255]));
}

export interface LabClusterOptions {
  readonly stateDir: string;
  /** Where vmlinuz and initrd.img are (scripts/build-lab-image.sh's output). */
  readonly filesDir: string;
  readonly nodes: number;
  readonly logLevel?: string;
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
  return `# bootherd lab cluster (embedded default; src/lab/cluster.ts)
cluster:
  name: lab
  domain: ${LAB_DOMAIN}
head:
  name: ${LAB_HEAD_NAME}
  address: ${LAB_HEAD_ADDRESS}
state: ${opts.stateDir}
files: ${opts.filesDir}
log:
  level: ${opts.logLevel ?? 'info'}
subnets:
  - network: 198.18.0.0/24
    interface: eth0
    pool: ${LAB_POOL[0]}-${LAB_POOL[1]}
    leaseTime: 1h
# The lab reaches no time server: the head serves its own clock (the host's).
ntp:
  localStratum: 10
profiles:
  default:
    kernel: ${LAB_KERNEL}
    initrd: ${LAB_INITRD}
    cmdline: ${LAB_CMDLINE}
nodes:${nodes.length ? '' : ' []'}
${nodes.map((n) => `  - { name: ${n.name}, macs: [${n.mac}], ip: ${n.ip} }`).join('\n')}
srv:
  - { name: ${LAB_SRV.name}, target: ${LAB_SRV.target}, port: ${LAB_SRV.port} }
`;
}
