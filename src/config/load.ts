/**
 * Loads and validates the cluster file. Every error names the file, the line,
 * the field and what is expected, e.g.
 *   cluster.yaml:14 nodes[2].macs[0]: expected a MAC address like 52:54:00:12:34:56
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import { cidrContains, ipToInt, parseCidr } from '../net/ipv4.ts';
import { clusterFileSchema, DEFAULT_LOADERS, type ClusterFile } from './schema.ts';
import type { BootProfile } from '../cluster/types.ts';
import { checkRootDiskPaths, RootDiskPathError, rootDiskPlacesOf, type RootDiskPlaces } from './root-disk.ts';
import { nodeAddressProblem } from '../cluster/node-address.ts';

export interface ConfigProblem {
  /** Field path like nodes[2].macs[0]. */
  readonly field: string;
  readonly message: string;
  readonly line?: number;
}

export class ConfigError extends Error {
  constructor(readonly file: string, readonly problems: readonly ConfigProblem[]) {
    super(problems.map((p) => `${path.basename(file)}${p.line ? `:${p.line}` : ''} ${p.field || '(top level)'}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

/** A validated cluster file, with paths made absolute and profiles completed. */
export interface Config extends Omit<ClusterFile, 'profiles'> {
  /** Absolute path of the cluster file ('<embedded>' for the built-in demo). */
  readonly source: string;
  readonly profiles: Readonly<Record<string, BootProfile>>;
  /** Absolute directory of boot files served over HTTP/TFTP. */
  readonly filesDir: string;
  /** Absolute state directory. */
  readonly stateDir: string;
  /** Absolute extra TFTP root (`tftp.root`), if configured. */
  readonly tftpRootDir: string | undefined;
}

export function fieldPath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const k of p) out += typeof k === 'number' ? `[${k}]` : (out ? '.' : '') + String(k);
  return out;
}

/**
 * A union (a MAC or a list of MACs, say) fails as a whole with "Invalid
 * input"; the branch that got furthest has the useful message.
 */
function specific(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union' || !issue.errors.length) return issue;
  let best: z.core.$ZodIssue | undefined;
  for (const branch of issue.errors) {
    for (const i of branch) {
      const score = i.path.length * 2 + (i.code === 'invalid_type' ? 0 : 1);
      const bestScore = best ? best.path.length * 2 + (best.code === 'invalid_type' ? 0 : 1) : -1;
      if (score > bestScore) best = i;
    }
  }
  if (!best) return issue;
  return specific({ ...best, path: [...issue.path, ...best.path] } as z.core.$ZodIssue);
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}; check the spelling against the config reference in docs/config.md`;
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) return `is required (${issue.message.replace(/^Invalid input: /, '')})`;
  return issue.message;
}

function lineOf(doc: Document, counter: LineCounter, p: readonly PropertyKey[]): number | undefined {
  for (let n = p.length; n >= 0; n--) {
    const node = doc.getIn(p.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return undefined;
}

/** Parses and validates cluster file text; `source` names it in errors and resolves relative paths. */
export function parseConfig(text: string, source: string): Config {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  if (doc.errors.length) {
    throw new ConfigError(source, doc.errors.map((e) => ({ field: '', message: `YAML syntax: ${e.message.split('\n')[0]}`, line: e.linePos?.[0].line })));
  }
  const raw: unknown = doc.toJS() ?? {};
  const parsed = clusterFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(source, parsed.error.issues.map(specific).map((i) => ({
      field: fieldPath(i.path),
      message: issueMessage(i),
      // An unknown field is best shown at the field itself.
      line: lineOf(doc, counter, i.code === 'unrecognized_keys' ? [...i.path, i.keys[0]!] : i.path),
    })));
  }
  const file = parsed.data;
  const base = source.startsWith('<') ? process.cwd() : path.dirname(path.resolve(source));
  const places = rootDiskPlacesOf({ source: source.startsWith('<') ? source : path.resolve(source), stateDir: path.resolve(base, file.state), iscsi: file.iscsi });
  const problems = crossCheck(file, places).map((p) => ({ ...p, line: lineOf(doc, counter, p.at) }));
  if (problems.length) throw new ConfigError(source, problems);

  const profiles: Record<string, BootProfile> = {
    default: { name: 'default', kernel: 'vmlinuz', initrd: ['initrd.img'], cmdline: '', loaders: { ...DEFAULT_LOADERS } },
  };
  for (const [name, p] of Object.entries(file.profiles)) {
    const loaders = { ...DEFAULT_LOADERS, ...p.loaders };
    // UEFI HTTP boot loads the same binary as UEFI PXE unless the profile says otherwise.
    loaders['uefi-x64-http'] = p.loaders['uefi-x64-http'] ?? loaders['uefi-x64'];
    loaders['uefi-arm64-http'] = p.loaders['uefi-arm64-http'] ?? loaders['uefi-arm64'];
    profiles[name] = { name, kernel: p.kernel, initrd: p.initrd, cmdline: p.cmdline, loaders, ...(p.root ? { root: p.root } : {}) };
  }
  return {
    ...file,
    source: source.startsWith('<') ? source : path.resolve(source),
    profiles,
    filesDir: path.resolve(base, file.files ?? 'files'),
    stateDir: path.resolve(base, file.state),
    tftpRootDir: file.tftp.root === undefined ? undefined : path.resolve(base, file.tftp.root),
  };
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [{ field: '', message: `cannot read the cluster file: ${(e as Error).message}` }]);
  }
  return parseConfig(text, file);
}

interface CrossProblem extends ConfigProblem { readonly at: readonly PropertyKey[] }

/** Checks that need more than one field: uniqueness, addresses inside subnets, profiles that exist. */
function crossCheck(file: ClusterFile, places: RootDiskPlaces): CrossProblem[] {
  const problems: CrossProblem[] = [];
  const add = (at: PropertyKey[], message: string) => problems.push({ at, field: fieldPath(at), message });
  const nets = file.subnets.map((s) => parseCidr(s.network));
  const ifaces = new Map<string, number>();
  file.subnets.forEach((s, i) => {
    const net = nets[i]!;
    nets.forEach((other, j) => {
      if (j < i && (cidrContains(other, net.network) || cidrContains(net, other.network))) add(['subnets', i, 'network'], `overlaps subnets[${j}] (${other.text}); subnets must be disjoint`);
    });
    if (s.interface) {
      const prev = ifaces.get(s.interface);
      if (prev !== undefined) add(['subnets', i, 'interface'], `interface ${s.interface} already serves subnets[${prev}]; one subnet per interface`);
      ifaces.set(s.interface, i);
    }
    if (s.router && !cidrContains(net, ipToInt(s.router))) add(['subnets', i, 'router'], `${s.router} is outside ${net.text}; the router must be on the subnet`);
    if (s.mode === 'proxy') {
      // The site's DHCP server owns a proxy subnet's addresses: a pool here would never be given out.
      if (s.pool) add(['subnets', i, 'pool'], `subnets[${i}] is mode: proxy: the site's DHCP server gives its addresses, so bootherd would never hand out this pool; remove pool (or set mode: server)`);
      if (s.leaseTime !== undefined) add(['subnets', i, 'leaseTime'], `subnets[${i}] is mode: proxy: the site's DHCP server sets the lease time; remove leaseTime`);
    }
    if (s.pool) {
      const [a, b] = s.pool.map(ipToInt) as [number, number];
      if (!cidrContains(net, a) || !cidrContains(net, b)) add(['subnets', i, 'pool'], `the pool ${s.pool.join('-')} must lie inside ${net.text}`);
      else if (a > b) add(['subnets', i, 'pool'], `the pool starts after it ends; write it low-high, like ${s.pool[1]}-${s.pool[0]}`);
    }
  });
  const names = new Map<string, number>();
  const macs = new Map<string, number>();
  const ips = new Map<string, number>();
  file.nodes.forEach((n, i) => {
    if (names.has(n.name)) add(['nodes', i, 'name'], `duplicate node name ${n.name} (also nodes[${names.get(n.name)}])`);
    names.set(n.name, i);
    n.macs.forEach((m, k) => {
      if (macs.has(m)) add(['nodes', i, 'macs', k], `MAC ${m} already belongs to nodes[${macs.get(m)}]; a MAC identifies one node`);
      macs.set(m, i);
    });
    if (n.ip === undefined) {
      if (!file.subnets.some((s) => s.mode === 'proxy')) add(['nodes', i, 'ip'], 'missing: every subnet is mode: server, where bootherd gives each node its reserved address; add ip (only nodes on a mode: proxy subnet go without)');
    } else {
      if (ips.has(n.ip)) add(['nodes', i, 'ip'], `address ${n.ip} is already reserved for nodes[${ips.get(n.ip)}]`);
      ips.set(n.ip, i);
      const at = nets.findIndex((net) => cidrContains(net, ipToInt(n.ip!)));
      if (at < 0) add(['nodes', i, 'ip'], `${n.ip} is in none of the subnets (${nets.map((x) => x.text).join(', ')}); add its subnet or fix the address`);
      else if (file.subnets[at]!.mode === 'proxy') add(['nodes', i, 'ip'], `${n.ip} is on subnets[${at}] (${nets[at]!.text}), which is mode: proxy: the site's DHCP server gives its addresses, so bootherd would never hand out this reservation; remove ip (bootherd learns the address the node gets) or reserve it on the site's server`);
      else {
        const router = file.subnets[at]!.router;
        const reserved = nodeAddressProblem(ipToInt(n.ip), nets[at]!, { heads: [file.head.address, ...file.heads.map((h) => h.address)].map(ipToInt), router: router ? ipToInt(router) : undefined });
        if (reserved) add(['nodes', i, 'ip'], reserved);
      }
    }
    if (n.profile !== 'default' && !(n.profile in file.profiles)) add(['nodes', i, 'profile'], `no profile named ${JSON.stringify(n.profile)}; define it under profiles: or use one of: default${Object.keys(file.profiles).map((p) => ', ' + p).join('')}`);
  });
  checkHeads(file, add);
  checkRootDisks(file, places, add);
  checkStore(file, add);
  return problems;
}

/** A path from the cluster file, made absolute: relative paths are from the cluster file's directory. */
export function configPath(config: Pick<Config, 'source'>, p: string): string {
  return path.resolve(config.source.startsWith('<') ? process.cwd() : path.dirname(config.source), p);
}

/** `heads:` must name this head (by head.name, at head.address) and no head twice. */
/** Images and devices of every root: inside iscsi.images, matching iscsi.devices (lexically; the real paths are checked before use). */
function checkRootDisks(file: ClusterFile, places: RootDiskPlaces, add: (at: PropertyKey[], message: string) => void): void {
  const check = (at: PropertyKey[], root: Parameters<typeof checkRootDiskPaths>[1] | undefined, node?: string) => {
    if (!root) return;
    try {
      checkRootDiskPaths(places, root, node);
    } catch (e) {
      if (e instanceof RootDiskPathError) add([...at, e.field], e.message);
      else throw e;
    }
  };
  for (const [name, p] of Object.entries(file.profiles)) check(['profiles', name, 'root'], p.root);
  file.nodes.forEach((n, i) => check(['nodes', i, 'root'], n.root, n.name));
}

function checkHeads(file: ClusterFile, add: (at: PropertyKey[], message: string) => void): void {
  if (!file.heads.length) return;
  const names = new Map<string, number>();
  const addresses = new Map<string, number>();
  file.heads.forEach((h, i) => {
    if (names.has(h.name)) add(['heads', i, 'name'], `duplicate head name ${h.name} (also heads[${names.get(h.name)}])`);
    if (addresses.has(h.address)) add(['heads', i, 'address'], `address ${h.address} is already heads[${addresses.get(h.address)}]`);
    names.set(h.name, i);
    addresses.set(h.address, i);
  });
  const self = names.get(file.head.name);
  if (self === undefined) add(['heads'], `this head (head.name ${file.head.name}) is not listed; list every head, this one included`);
  else if (file.heads[self]!.address !== file.head.address) add(['heads', self, 'address'], `head ${file.head.name} is at ${file.head.address} (head.address); the two must agree`);
}

/** `store:` must say where etcd is: given endpoints, or the heads whose members it runs. */
function checkStore(file: ClusterFile, add: (at: PropertyKey[], message: string) => void): void {
  const { store } = file;
  if (store.kind === 'embedded' && store.endpoints) add(['store', 'endpoints'], 'endpoints are for kind: etcd; set store.kind to etcd, or remove the endpoints');
  if (store.tls && (store.kind !== 'etcd' || store.endpoints)) {
    add(['store', 'tls'], 'tls sets TLS between the etcd members bootherd runs (kind: etcd, no endpoints); an etcd run elsewhere has its TLS set where it runs: remove store.tls');
  }
  if (store.kind === 'etcd' && !store.endpoints && !file.heads.length) {
    add(['store'], 'kind etcd without endpoints runs an etcd member on every head of heads:, and heads: is empty; list the heads (this one included), or give store.endpoints');
  }
}
