/**
 * The cluster model: the one source of truth every service reads. It joins the
 * cluster file (read-only at run time) with the records kept in the store
 * (nodes, hosts and SRV records added through the API), keeps the indices the
 * per-packet paths need (node by MAC, by address, by name), and validates
 * every change before it reaches the store, so a node added through the API
 * is reachable by DHCP, DNS, TFTP and HTTP at once.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import type { Config } from '../config/load.ts';
import { fieldPath } from '../config/load.ts';
import { hostSchema, nodeSchema, srvSchema } from '../config/schema.ts';
import { broadcastOf, cidrContains, ipToInt, parseCidr, type Cidr } from '../net/ipv4.ts';
import type { Store } from '../store/store.ts';
import { checkRootDiskPaths, confinedDevice, confinedImage, devicePath, RootDiskPathError, rootDiskPlacesOf } from '../config/root-disk.ts';
import { nodeAddressProblem } from './node-address.ts';
import type { AddressRecord, BootProfile, HostRecord, LearnedAddress, NodeRecord, RootDisk, SrvRecord } from './types.ts';

export interface Subnet {
  readonly cidr: Cidr;
  /** server: bootherd gives addresses; proxy: the site's DHCP server does, bootherd only the boot file. */
  readonly mode: 'server' | 'proxy';
  readonly interface?: string;
  readonly router?: number;
  readonly broadcast: number;
  /** Inclusive pool bounds as integers, when the subnet has a dynamic pool. */
  readonly pool?: { readonly start: number; readonly end: number };
  readonly leaseTime: number;
  readonly dnsServers: readonly number[];
  readonly ntpServers: readonly number[];
}

/** A change that the model refused, naming the field and the fix (HTTP 400/404/409). */
export class ModelError extends Error {
  constructor(readonly status: 400 | 404 | 409, readonly field: string, message: string) {
    super(field ? `${field}: ${message}` : message);
    this.name = 'ModelError';
  }
}

/** The field at fault and what is wrong with it, from a failed parse of API input (its first issue). */
export function zodProblem(error: z.ZodError): { field: string; message: string } {
  const first = error.issues[0]!;
  const message = first.code === 'unrecognized_keys' ? `unknown field ${first.keys.join(', ')}` : first.message;
  return { field: fieldPath(first.path), message };
}

function fromZod(error: z.ZodError): ModelError {
  const { field, message } = zodProblem(error);
  return new ModelError(400, field, message);
}

export class ClusterModel {
  readonly domain: string;
  readonly headAddress: number;
  /** This head's address and every one of `heads:`; no node may have one. */
  private readonly headAddresses: readonly number[];
  readonly subnets: readonly Subnet[];
  private byMac = new Map<string, NodeRecord>();
  private byIp = new Map<number, NodeRecord>();
  private byName = new Map<string, NodeRecord>();
  private configNodes: NodeRecord[];
  private configHosts: HostRecord[];
  private configSrv: SrvRecord[];
  private listeners = new Set<() => void>();
  /**
   * Addresses of nodes on proxy subnets, learned from the boot exchange, by
   * node name: at once here, and kept in the store (`addresses`) for a
   * restart and for the other heads.
   */
  private learned = new Map<string, { readonly ip: string } & LearnedAddress>();

  constructor(readonly config: Config, readonly store: Store) {
    this.domain = config.cluster.domain;
    this.headAddress = ipToInt(config.head.address);
    this.headAddresses = [this.headAddress, ...config.heads.map((h) => ipToInt(h.address))];
    const head = [this.headAddress];
    this.subnets = config.subnets.map((s) => {
      const cidr = parseCidr(s.network);
      return {
        cidr,
        mode: s.mode,
        interface: s.interface,
        router: s.router ? ipToInt(s.router) : undefined,
        broadcast: broadcastOf(cidr),
        pool: s.pool ? { start: ipToInt(s.pool[0]), end: ipToInt(s.pool[1]) } : undefined,
        leaseTime: s.leaseTime ?? config.dhcp.leaseTime,
        dnsServers: s.dnsServers?.map(ipToInt) ?? head,
        ntpServers: s.ntpServers?.map(ipToInt) ?? head,
      };
    });
    this.configNodes = config.nodes.map((n) => ({ ...n, source: 'config' as const }));
    this.configHosts = config.hosts.map((h) => ({ ...h, source: 'config' as const }));
    this.configSrv = config.srv.map((s) => ({ ...s, source: 'config' as const }));
    for (const a of store.values('addresses')) this.learned.set(a.node, a);
    this.reindex();
    store.onChange((c) => {
      if (c.collection === 'addresses') {
        // Another head's observation (or our own, written back): the newest one wins.
        const a = c.value as AddressRecord | undefined;
        const mine = this.learned.get(c.key);
        if (a ? mine?.ip === a.ip || (mine !== undefined && mine.at > a.at) : mine === undefined) return;
        if (a) this.learned.set(c.key, a); else this.learned.delete(c.key);
      }
      if (c.collection === 'nodes' || c.collection === 'addresses') this.reindex();
      if (c.collection === 'nodes' || c.collection === 'hosts' || c.collection === 'srv' || c.collection === 'addresses') for (const l of this.listeners) l();
    });
  }

  /** Called after any node, host or SRV change (API or replication). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private reindex(): void {
    this.byMac.clear();
    this.byIp.clear();
    this.byName.clear();
    // Config nodes win over store nodes of the same name: the file is the administrator's declaration.
    for (const declared of [...this.store.values('nodes'), ...this.configNodes]) {
      const old = this.byName.get(declared.name);
      if (old) { for (const m of old.macs) this.byMac.delete(m); if (old.ip !== undefined) this.byIp.delete(ipToInt(old.ip)); }
      // A node without a reservation shows the address it was seen with, and how it was seen.
      const l = declared.ip === undefined ? this.learned.get(declared.name) : undefined;
      const n: NodeRecord = l ? { ...declared, ip: l.ip, learned: { from: l.from, at: l.at } } : declared;
      this.byName.set(n.name, n);
      for (const m of n.macs) this.byMac.set(m, n);
      if (n.ip !== undefined) this.byIp.set(ipToInt(n.ip), n);
    }
  }

  /**
   * A node without a reservation was seen at `ip` (its firmware's request to
   * the PXE boot server, its iPXE script request, its "booted" call-back):
   * DNS, its script and the API show it from now on. Another node that was
   * seen at the same address loses it (the site's server moved it).
   */
  learnAddress(node: NodeRecord, ip: string, from: LearnedAddress['from'], at: number): void {
    const current = this.byName.get(node.name);
    if (!current || current.ip === ip || (current.ip !== undefined && !current.learned)) return;
    // Only a proxy subnet's addresses are the site's to give; anything else is not where the node lives.
    if (this.subnetForIp(ipToInt(ip))?.mode !== 'proxy') return;
    for (const [name, l] of this.learned) {
      if (l.ip !== ip) continue;
      this.learned.delete(name);
      this.store.delete('addresses', name).catch(() => undefined);
    }
    const record: AddressRecord = { node: node.name, ip, from, at };
    this.learned.set(node.name, record);
    // Kept for a restart and the other heads; if the store cannot take it now, this head still knows it.
    this.store.put('addresses', node.name, record).catch(() => undefined);
    this.reindex();
    for (const listener of this.listeners) listener();
  }

  // ---- reads (synchronous, per packet) ----

  nodeByMac(mac: string): NodeRecord | undefined { return this.byMac.get(mac); }
  nodeByIp(ip: number): NodeRecord | undefined { return this.byIp.get(ip); }
  nodeByName(name: string): NodeRecord | undefined { return this.byName.get(name.toLowerCase()); }
  nodes(): IterableIterator<NodeRecord> { return this.byName.values(); }
  nodeCount(): number { return this.byName.size; }

  hosts(): HostRecord[] { return [...this.configHosts, ...this.store.values('hosts')]; }
  srvRecords(): SrvRecord[] { return [...this.configSrv, ...this.store.values('srv')]; }

  profile(name: string): BootProfile | undefined { return this.config.profiles[name]; }
  profileOf(node: NodeRecord): BootProfile { return this.config.profiles[node.profile] ?? this.config.profiles['default']!; }

  subnetForIp(ip: number): Subnet | undefined {
    for (const s of this.subnets) if (cidrContains(s.cidr, ip)) return s;
    return undefined;
  }

  subnetForInterface(name: string): Subnet | undefined {
    return this.subnets.find((s) => s.interface === name);
  }

  // ---- changes (validated, then stored) ----

  async addNode(input: unknown): Promise<NodeRecord> {
    const parsed = nodeSchema.safeParse(input);
    if (!parsed.success) throw fromZod(parsed.error);
    const n = parsed.data;
    if (this.byName.has(n.name)) throw new ModelError(409, 'name', `a node named ${n.name} exists already; remove it first or pick another name`);
    this.checkNode(n, undefined);
    const record: NodeRecord = { ...n, source: 'api' };
    await this.store.put('nodes', n.name, record);
    return record;
  }

  async updateNode(name: string, input: unknown): Promise<NodeRecord> {
    const current = this.mutableNode(name);
    // A learned address is the model's observation, not part of the record.
    const { source: _source, learned, ...fields } = current;
    if (learned) delete (fields as { ip?: string }).ip;
    const parsed = nodeSchema.safeParse({ ...fields, ...(input as object) });
    if (!parsed.success) throw fromZod(parsed.error);
    if (parsed.data.name !== current.name) throw new ModelError(400, 'name', 'a node cannot be renamed; remove it and add it under the new name');
    this.checkNode(parsed.data, current);
    const record: NodeRecord = { ...parsed.data, source: 'api' };
    await this.store.put('nodes', name, record);
    return record;
  }

  async removeNode(name: string): Promise<NodeRecord> {
    const current = this.mutableNode(name);
    await this.store.delete('nodes', current.name);
    return current;
  }

  private mutableNode(name: string): NodeRecord {
    const current = this.byName.get(name.toLowerCase());
    if (!current) throw new ModelError(404, 'name', `no node named ${name}`);
    if (current.source === 'config') throw new ModelError(409, 'name', `node ${name} is declared in the cluster file (${this.config.source}); change it there`);
    return current;
  }

  private checkNode(n: z.output<typeof nodeSchema>, replacing: NodeRecord | undefined): void {
    for (const [i, mac] of n.macs.entries()) {
      const owner = this.byMac.get(mac);
      if (owner && owner !== replacing) throw new ModelError(409, `macs[${i}]`, `MAC ${mac} already belongs to node ${owner.name}`);
    }
    if (n.ip === undefined) {
      if (!this.subnets.some((s) => s.mode === 'proxy')) throw new ModelError(400, 'ip', 'missing: every subnet is mode: server, where each node needs its reserved address');
    } else this.checkReservation(n.ip, replacing);
    if (!this.config.profiles[n.profile]) throw new ModelError(400, 'profile', `no profile named ${n.profile}; known: ${Object.keys(this.config.profiles).join(', ')}`);
    if (n.root) this.checkRoot(n.root, n.name);
  }

  private checkReservation(address: string, replacing: NodeRecord | undefined): void {
    const ip = ipToInt(address);
    const owner = this.byIp.get(ip);
    if (owner && owner !== replacing && !owner.learned) throw new ModelError(409, 'ip', `address ${address} is already reserved for node ${owner.name}`);
    const subnet = this.subnetForIp(ip);
    if (!subnet) throw new ModelError(400, 'ip', `${address} is in none of the cluster's subnets (${this.subnets.map((s) => s.cidr.text).join(', ')})`);
    if (subnet.mode === 'proxy') throw new ModelError(400, 'ip', `${address} is on ${subnet.cidr.text}, a mode: proxy subnet: the site's DHCP server gives its addresses; leave ip out (bootherd learns it)`);
    const reserved = nodeAddressProblem(ip, subnet.cidr, { heads: this.headAddresses, router: subnet.router });
    if (reserved) throw new ModelError(400, 'ip', reserved);
  }

  /** A node's own root may name only images and devices the cluster file allows (src/cluster/root-disk.ts). */
  private checkRoot(root: RootDisk, node: string): void {
    const places = rootDiskPlacesOf(this.config);
    try {
      checkRootDiskPaths(places, root, node);
      // Where the path exists already, its real path must hold too (a symlink out of the directory).
      if (root.image !== undefined && existsSync(path.resolve(places.baseDir, root.image))) confinedImage(places, root.image);
      if (root.disk === 'block' && root.device !== undefined && existsSync(path.resolve('/', devicePath(root, node)))) confinedDevice(places, root, node);
    } catch (e) {
      if (e instanceof RootDiskPathError) throw new ModelError(400, `root.${e.field}`, e.message);
      throw e;
    }
  }

  async addHost(input: unknown): Promise<HostRecord> {
    const parsed = hostSchema.safeParse(input);
    if (!parsed.success) throw fromZod(parsed.error);
    const h = parsed.data;
    if (this.configHosts.some((c) => c.name === h.name)) throw new ModelError(409, 'name', `host ${h.name} is declared in the cluster file; change it there`);
    const record: HostRecord = { ...h, source: 'api' };
    await this.store.put('hosts', h.name, record);
    return record;
  }

  async removeHost(name: string): Promise<void> {
    const key = name.toLowerCase().replace(/\.$/, '');
    if (!this.store.get('hosts', key)) throw new ModelError(404, 'name', `no host mapping named ${name} (cluster-file hosts are changed in the file)`);
    await this.store.delete('hosts', key);
  }

  async addSrv(input: unknown): Promise<SrvRecord> {
    const parsed = srvSchema.safeParse(input);
    if (!parsed.success) throw fromZod(parsed.error);
    const s = parsed.data;
    const record: SrvRecord = { ...s, source: 'api' };
    await this.store.put('srv', srvKey(record), record);
    return record;
  }

  async removeSrv(name: string, target: string, port: number): Promise<void> {
    const key = srvKey({ name: name.toLowerCase(), target: target.toLowerCase(), port });
    if (!this.store.get('srv', key)) throw new ModelError(404, 'name', `no SRV record ${name} -> ${target}:${port} (cluster-file records are changed in the file)`);
    await this.store.delete('srv', key);
  }
}

export function srvKey(s: { name: string; target: string; port: number }): string {
  return `${s.name} ${s.target} ${s.port}`;
}
