/**
 * Zone data: every record the DNS service serves, derived from the cluster
 * model in one pure function. The result is plain data (structured-clone
 * safe), so the primary builds it once per change and ships the same object
 * to worker threads; each compiles it into its own lookup index.
 *
 * Naming rules (the one place they live):
 * - owner names (hosts, SRV, aliases, TXT) are relative to the cluster domain
 *   unless they end with it;
 * - targets (SRV, aliases) in the domain or with a single label are cluster
 *   names; a dotted target outside the domain is taken as fully qualified.
 * When two sources claim a name or an address, the first wins, in the order
 * head, nodes, hosts, named DHCP leases; an alias never shadows other data.
 */
import ipaddr from 'ipaddr.js';
import type { HostRecord, NodeRecord, SrvRecord } from '../../cluster/types.ts';
import type { DnsConfig } from '../../config/sections/dns.ts';
import { ipToInt, reverseName, type Cidr } from '../../net/ipv4.ts';

export type ZoneRecord =
  | { readonly name: string; readonly type: 'A' | 'AAAA' | 'PTR' | 'CNAME' | 'NS'; readonly ttl: number; readonly data: string }
  | { readonly name: string; readonly type: 'SRV'; readonly ttl: number; readonly data: { readonly priority: number; readonly weight: number; readonly port: number; readonly target: string } }
  | { readonly name: string; readonly type: 'TXT'; readonly ttl: number; readonly data: readonly string[] };

export interface Soa {
  readonly mname: string;
  readonly rname: string;
  readonly serial: number;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  /** The negative-caching TTL (RFC 2308). */
  readonly minimum: number;
  readonly ttl: number;
}

export interface ZoneData {
  /** Zone apexes we are authoritative for: the cluster domain and the reverse zones of its subnets. */
  readonly origins: readonly string[];
  readonly soa: Soa;
  /** All records, NS at each apex included; names lowercase, without the final dot. */
  readonly records: readonly ZoneRecord[];
  /** Records skipped because their name was taken (for the log). */
  readonly conflicts: readonly string[];
}

/** A DHCP client's name while its lease lives. */
export interface LeaseName {
  readonly name: string;
  readonly ip: string;
  readonly expiresAt: number;
}

export interface ZoneInput {
  readonly domain: string;
  readonly head: { readonly name: string; readonly address: string };
  readonly subnets: readonly Cidr[];
  readonly nodes: Iterable<NodeRecord>;
  readonly hosts: readonly HostRecord[];
  readonly srv: readonly SrvRecord[];
  readonly leases: Iterable<LeaseName>;
  readonly dns: Pick<DnsConfig, 'ttl' | 'negativeTtl' | 'aliases' | 'txt' | 'slurm'>;
  readonly serial: number;
  readonly now: number;
}

/** A label a DHCP client may claim as its name (RFC 952/1123 host name label). */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The name a lease publishes: the first label of the client's host name (option 12), when it is a valid one. */
export function leaseLabel(hostname: string | undefined): string | undefined {
  if (!hostname) return undefined;
  const label = hostname.toLowerCase().split('.')[0]!;
  return LABEL.test(label) ? label : undefined;
}

export function buildZoneData(input: ZoneInput): ZoneData {
  const { domain, dns } = input;
  const ttl = dns.ttl;
  const owner = (name: string) => (name === domain || name.endsWith(`.${domain}`) ? name : `${name}.${domain}`);
  const target = (name: string) => (name === domain || name.endsWith(`.${domain}`) || name.includes('.') ? name : `${name}.${domain}`);
  const headName = owner(input.head.name);
  const origins = [domain, ...reverseZones(input.subnets)];
  const records: ZoneRecord[] = [];
  const conflicts: string[] = [];
  /** Names holding address records, and who holds them. */
  const addressOwner = new Map<string, string>();
  const ptrTaken = new Set<string>();

  const addAddresses = (name: string, ip: string, ip6: string | undefined, by: string, recordTtl = ttl): void => {
    const holder = addressOwner.get(name);
    if (holder !== undefined && holder !== by) { conflicts.push(`${name} (${by}) is already ${holder}'s`); return; }
    addressOwner.set(name, by);
    records.push({ name, type: 'A', ttl: recordTtl, data: ip });
    if (ip6) records.push({ name, type: 'AAAA', ttl: recordTtl, data: ip6 });
    for (const rev of [reverseName(ipToInt(ip)), ...(ip6 ? [reverseName6(ip6)] : [])]) {
      if (ptrTaken.has(rev)) continue;
      ptrTaken.add(rev);
      records.push({ name: rev, type: 'PTR', ttl: recordTtl, data: name });
    }
  };

  addAddresses(headName, input.head.address, undefined, 'the head');
  // A node on a proxy subnet has a name once bootherd has seen its address.
  for (const n of input.nodes) if (n.ip !== undefined) addAddresses(owner(n.name), n.ip, n.ip6, `node ${n.name}`);
  // Hosts may repeat a name with several addresses (round robin): one holder per host name.
  for (const h of input.hosts) addAddresses(owner(h.name), h.ip, h.ip6, `host ${h.name}`);
  for (const l of input.leases) {
    if (l.expiresAt <= input.now) continue;
    addAddresses(owner(l.name), l.ip, undefined, `lease of ${l.ip}`, Math.max(1, Math.min(ttl, Math.floor((l.expiresAt - input.now) / 1000))));
  }

  for (const origin of origins) records.push({ name: origin, type: 'NS', ttl, data: headName });

  const srv = [...input.srv];
  if (dns.slurm) {
    // Slurm's configless mode: the lowest priority value is the primary controller (slurm.conf(5), SlurmctldHost).
    [dns.slurm.controller, ...dns.slurm.backups].forEach((host, i) => {
      srv.push({ name: '_slurmctld._tcp', target: host, port: dns.slurm!.port, priority: 10 * (i + 1), weight: 0, source: 'config' });
    });
  }
  for (const s of srv) {
    records.push({ name: owner(s.name), type: 'SRV', ttl, data: { priority: s.priority, weight: s.weight, port: s.port, target: target(s.target) } });
  }
  for (const t of dns.txt) records.push({ name: owner(t.name), type: 'TXT', ttl, data: t.text });

  const taken = new Set(records.map((r) => r.name));
  for (const a of dns.aliases) {
    const name = owner(a.name);
    if (taken.has(name)) { conflicts.push(`alias ${name} would hide its other records: skipped`); continue; }
    taken.add(name);
    records.push({ name, type: 'CNAME', ttl, data: target(a.target) });
  }

  return {
    origins,
    soa: {
      mname: headName,
      rname: `hostmaster.${domain}`,
      serial: input.serial,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: dns.negativeTtl,
      ttl,
    },
    records,
    conflicts,
  };
}

/**
 * The reverse zones covering the subnets: each subnet is split at the next
 * octet boundary (a /22 gives four /24 zones, a /12 sixteen /16 zones); a
 * subnet longer than /24 is served as its whole /24, which suits a head that
 * is the only DNS server of its networks better than RFC 2317 delegation.
 */
export function reverseZones(subnets: readonly Cidr[]): string[] {
  const zones = new Set<string>();
  for (const s of subnets) {
    const bits = Math.min(24, Math.max(8, Math.ceil(s.prefix / 8) * 8));
    const base = bits >= s.prefix ? s.network : (s.network & (0xffffffff << (32 - bits))) >>> 0;
    const count = bits > s.prefix ? 2 ** (bits - s.prefix) : 1;
    for (let i = 0; i < count; i++) {
      const net = (base + i * 2 ** (32 - bits)) >>> 0;
      const octets = [net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255].slice(0, bits / 8);
      zones.add(`${octets.reverse().join('.')}.in-addr.arpa`);
    }
  }
  return [...zones];
}

/** The ip6.arpa name of an IPv6 address (RFC 3596 2.5): nibbles, least significant first. */
export function reverseName6(ip6: string): string {
  const nibbles: string[] = [];
  for (const byte of ipaddr.IPv6.parse(ip6).toByteArray()) nibbles.push((byte >> 4).toString(16), (byte & 15).toString(16));
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}
