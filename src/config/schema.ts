/**
 * The cluster file: one YAML document describing the head, its networks and
 * its nodes. This schema is the reference; docs/config.md is
 * written from it.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { FIRMWARES, type Firmware } from '../cluster/types.ts';
import { cidr, duration, hostname, ipv4, ipv6, logLevel, mac, ownerName, port } from './fields.ts';
import { dhcpSection } from './sections/dhcp.ts';
import { dnsSection } from './sections/dns.ts';
import { httpSection } from './sections/http.ts';
import { iscsiSection, rootSection } from './sections/iscsi.ts';
import { ntpSection } from './sections/ntp.ts';
import { storeSection } from './sections/store.ts';
import { telemetrySection } from './sections/telemetry.ts';
import { tftpSection } from './sections/tftp.ts';

/** iPXE binaries from Debian's `ipxe` package, copied into boot-assets/ipxe by the setup script. */
export const DEFAULT_LOADERS: Readonly<Record<Firmware, string>> = {
  'bios': 'undionly.kpxe',
  'uefi-ia32': 'ipxe.efi',
  'uefi-x64': 'ipxe.efi',
  'uefi-arm32': 'ipxe-arm32.efi',
  'uefi-arm64': 'ipxe-arm64.efi',
  'uefi-x64-http': 'ipxe.efi',
  'uefi-arm64-http': 'ipxe-arm64.efi',
};

/** Where the setup script puts those binaries; TFTP (and HTTP, for UEFI HTTP boot) serve them from here. */
export const LOADERS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../boot-assets/ipxe');

const poolRange = z.union([
  z.string().regex(/^\s*[\d.]+\s*-\s*[\d.]+\s*$/, { error: 'expected a range like 198.18.0.100-198.18.0.199' })
    .transform((v) => v.split('-').map((s) => s.trim())),
  z.tuple([ipv4, ipv4]),
], { error: 'expected a range like 198.18.0.100-198.18.0.199' })
  .pipe(z.tuple([ipv4, ipv4]));

const subnet = z.strictObject({
  network: cidr,
  /**
   * server: bootherd gives the addresses. proxy: the site's own DHCP server
   * does, and bootherd answers only booting clients with their boot file
   * (proxyDHCP, and the PXE boot server on port 4011); no pool, no reservations.
   */
  mode: z.enum(['server', 'proxy'], { error: 'expected server (bootherd gives the addresses) or proxy (the site\'s DHCP server does)' }).default('server'),
  /**
   * Interface to serve DHCP on for this subnet (directly attached). Omit for a
   * subnet reached through a DHCP relay: its requests arrive with giaddr set.
   */
  interface: z.string().min(1).optional(),
  router: ipv4.optional(),
  /** Dynamic pool for machines without a reservation; omit to serve reservations only. */
  pool: poolRange.optional(),
  leaseTime: duration.optional(),
  /** Defaults to the head's address. */
  dnsServers: z.array(ipv4).optional(),
  /** Defaults to the head's address. */
  ntpServers: z.array(ipv4).optional(),
});

const profile = z.strictObject({
  kernel: z.string().min(1, { error: 'expected the kernel file name, relative to the boot file root' }),
  initrd: z.union([z.string().min(1).transform((v: string) => [v]), z.array(z.string().min(1))]).default([]),
  cmdline: z.string().default(''),
  /** Per-firmware first-stage loader; unset ones take the iPXE default. */
  loaders: z.partialRecord(z.enum(FIRMWARES as [Firmware, ...Firmware[]]), z.string().min(1)).default({}),
  /** The nodes' root disk over iSCSI (see sections/iscsi.ts). */
  root: rootSection.optional(),
});

export const nodeSchema = z.strictObject({
  name: hostname,
  macs: z.union([mac.transform((v) => [v]), z.array(mac).min(1, { error: 'a node needs at least one MAC' })]),
  /** Its reserved address; left out for a node on a proxy subnet, whose address the site's DHCP server gives. */
  ip: ipv4.optional(),
  /** Optional IPv6 address, published as the node's AAAA record. */
  ip6: ipv6.optional(),
  profile: z.string().min(1).default('default'),
  /** This node's own iSCSI root disk, instead of its profile's. */
  root: rootSection.optional(),
});

export const hostSchema = z.strictObject({ name: ownerName, ip: ipv4, ip6: ipv6.optional() });

/** A head node of the cluster, as `heads:` lists them (NTP election, the etcd members of `store: { kind: etcd }`). */
export const headSchema = z.strictObject({ name: hostname, address: ipv4 });

export const srvSchema = z.strictObject({
  name: ownerName,
  target: ownerName,
  port,
  priority: z.number().int().min(0).max(65535).default(0),
  weight: z.number().int().min(0).max(65535).default(0),
});

export const clusterFileSchema = z.strictObject({
  cluster: z.strictObject({
    name: z.string().min(1).default('cluster'),
    /** DNS domain of the nodes: n001.<domain>. */
    domain: hostname.default('cluster.local'),
  }).prefault({}),
  head: z.strictObject({
    name: hostname.default('head'),
    /** This head's address on the provisioning network: DHCP server id, next-server, DNS and NTP for nodes. */
    address: ipv4,
  }),
  /**
   * Every head node of the cluster, this one included; empty for a single
   * head. With several, they elect one as the time source when no upstream
   * is reachable (the first listed head that answers), and with
   * `store: { kind: etcd }` and no endpoints each runs one etcd member.
   */
  heads: z.array(headSchema).default([]),
  /** State directory of the embedded store (leases, API-added nodes, hosts, boot timelines); the local etcd member's data in <state>/etcd. */
  state: z.string().min(1).default('/var/lib/bootherd'),
  /** Where the records live: the embedded journal (one head) or etcd (several heads). */
  store: storeSection,
  /** Directory with boot files (kernels, initrds) served over HTTP and TFTP; relative paths are from the cluster file. */
  files: z.string().min(1).optional(),
  log: z.strictObject({ level: logLevel.default('info') }).prefault({}),
  subnets: z.array(subnet).min(1, { error: 'the cluster needs at least one subnet' }),
  dhcp: dhcpSection,
  tftp: tftpSection,
  dns: dnsSection,
  ntp: ntpSection,
  http: httpSection,
  iscsi: iscsiSection,
  telemetry: telemetrySection,
  profiles: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/i, { error: 'profile names are letters, digits, - and _' }), profile).default({}),
  nodes: z.array(nodeSchema).default([]),
  hosts: z.array(hostSchema).default([]),
  srv: z.array(srvSchema).default([]),
});

export type ClusterFile = z.output<typeof clusterFileSchema>;
export type ClusterFileInput = z.input<typeof clusterFileSchema>;
