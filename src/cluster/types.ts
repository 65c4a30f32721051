/**
 * The cluster model's records. Every protocol derives its answers from these:
 * a node's reservation (DHCP), its name (DNS), its boot files (TFTP/HTTP) and
 * its root disk (iSCSI) all come from one NodeRecord.
 */

/** Firmware kinds a DHCP client can announce (option 93, RFC 4578 + IANA registry). */
export type Firmware = 'bios' | 'uefi-ia32' | 'uefi-x64' | 'uefi-arm32' | 'uefi-arm64' | 'uefi-x64-http' | 'uefi-arm64-http';

export const FIRMWARES: readonly Firmware[] = ['bios', 'uefi-ia32', 'uefi-x64', 'uefi-arm32', 'uefi-arm64', 'uefi-x64-http', 'uefi-arm64-http'];

/** Where a record came from: the cluster file (read-only at run time) or the API (kept in the store). */
export type RecordSource = 'config' | 'api';

export interface BootProfile {
  readonly name: string;
  /** Kernel file, relative to the boot file root, served over HTTP. */
  readonly kernel: string;
  readonly initrd: readonly string[];
  readonly cmdline: string;
  /** The first-stage loader each firmware fetches by TFTP (or HTTP for UEFI HTTP boot). */
  readonly loaders: Readonly<Record<Firmware, string>>;
  /** The nodes' root disk, exported by the head over iSCSI. */
  readonly root?: RootDisk;
}

/** A node's root disk served over iSCSI (`root:` of a profile or node; src/config/sections/iscsi.ts). */
export interface RootDisk {
  readonly kind: 'iscsi';
  /** Golden image a per-node copy is made from (disk: copy); relative to the cluster file. */
  readonly image?: string;
  readonly disk: 'copy' | 'block';
  /** Block device per node (disk: block), {node} replaced by the node name. */
  readonly device?: string;
  /** Bytes a new copy is grown to. */
  readonly size?: number;
  readonly boot: 'sanboot' | 'kernel';
}

export interface NodeRecord {
  readonly name: string;
  /** Canonical lowercase colon-separated MACs; a node may have several NICs. */
  readonly macs: readonly string[];
  /**
   * Its IPv4 address: the reservation of the cluster file or API, or, on a
   * proxy subnet (the site's DHCP server gives the address), the address
   * bootherd learned (see `learned`); undefined until then.
   */
  readonly ip?: string;
  /** Set when `ip` was learned rather than reserved: how and when. */
  readonly learned?: LearnedAddress;
  /** IPv6 address for DNS (AAAA); DHCP is IPv4 only. */
  readonly ip6?: string;
  readonly profile: string;
  /** The node's own root disk, overriding its profile's. */
  readonly root?: RootDisk;
  readonly source: RecordSource;
}

/** How bootherd learned a node's address on a proxy subnet (docs/dhcp.md#proxy-mode). */
export const ADDRESS_SOURCES = ['dhcp-request', 'pxe-request', 'ipxe-script', 'booted'] as const;

export interface LearnedAddress {
  /**
   * dhcp-request: the booting client's REQUEST to the site's server for it (option 50, broadcast);
   * pxe-request: its REQUEST to the PXE boot server (4011); ipxe-script: the script request's source;
   * booted: the call-back's.
   */
  readonly from: typeof ADDRESS_SOURCES[number];
  readonly at: number;
}

/** A learned address as the store keeps it (collection `addresses`, keyed by node name). */
export interface AddressRecord extends LearnedAddress {
  readonly node: string;
  readonly ip: string;
}

export interface HostRecord {
  /** Fully qualified or relative (to the cluster domain) name. */
  readonly name: string;
  readonly ip: string;
  readonly ip6?: string;
  readonly source: RecordSource;
}

export interface SrvRecord {
  /** Owner name, e.g. `_slurmctld._tcp` (relative to the cluster domain) or a full name. */
  readonly name: string;
  readonly target: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
  readonly source: RecordSource;
}

/**
 * What the store keeps of a lease. A single head holds its OFFERs in memory
 * only (src/services/dhcp/leases.ts); with a shared store an OFFER is an
 * `offered` record, the claim that keeps other heads off the address.
 */
export const LEASE_STATES = ['offered', 'bound', 'released', 'declined'] as const;

export type LeaseState = typeof LEASE_STATES[number];

export interface LeaseRecord {
  readonly ip: string;
  /** Hardware address the lease was given to. */
  readonly mac: string;
  /** Client identifier (option 61) as hex, when the client sent one. */
  readonly clientId?: string;
  /** Host name the client asked for (option 12), for DNS of dynamic clients. */
  readonly hostname?: string;
  /** Reserved node the lease belongs to, if any. */
  readonly node?: string;
  /** The subnet (CIDR text) the address belongs to. */
  readonly subnet: string;
  /** Where the client was: the relay (giaddr) that forwarded its request, or the head's interface it arrived on. */
  readonly relay?: string;
  readonly interface?: string;
  /** The relay port: option 82's circuit id (sub-option 1) and remote id (sub-option 2) as hex. */
  readonly circuitId?: string;
  readonly remoteId?: string;
  readonly state: LeaseState;
  /** Server identifier (dotted) of the head that wrote it, with a shared store: whose OFFER or ACK it was. */
  readonly server?: string;
  /** Milliseconds since the epoch; for `declined`, the end of quarantine; for `offered`, the end of the offer. */
  readonly expiresAt: number;
  readonly updatedAt: number;
}

export const BOOT_STAGES = ['dhcp-offer', 'dhcp-ack', 'tftp-loader', 'ipxe-script', 'kernel', 'initrd', 'booted'] as const;

/** One step of a node's boot, for the boot timeline. */
export interface BootStage {
  readonly stage: typeof BOOT_STAGES[number];
  readonly at: number;
  readonly detail?: string;
}

export interface BootTimeline {
  readonly node: string;
  readonly startedAt: number;
  readonly stages: readonly BootStage[];
}
