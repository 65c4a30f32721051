/**
 * The iPXE script a booting machine fetches after DHCP: rendered from a
 * template (boot-assets/templates/node.ipxe, or the unknown-MAC template) with
 * the node record and its profile. Independent of HTTP, so the TFTP service
 * can serve the same script to an iPXE that asks by TFTP.
 *
 * Templates are plain text with {{variable}} placeholders. A line that uses
 * {{initrd_url}} or {{initrd_name}} is repeated once per initrd of the profile
 * (and dropped for a profile without one). A line is kept only where the
 * machine's boot gives its placeholders a value: lines with a root-disk
 * placeholder (initiator_iqn, root_path, root_problem) only for a node whose
 * root disk gives it, lines with a kernel placeholder (kernel_url, initrd_url,
 * kernel_args, ...) only for a node that boots a kernel, so a script never
 * holds a command its node must not run. A placeholder the template does not
 * know is an error that names it, not a silently empty string: a script with a
 * hole in its kernel line would fail on the node, far from the cause.
 *
 * A node's root disk (`root:` of the node or its profile, today only iSCSI)
 * decides how the script boots, through {{boot_method}}, which names a label
 * of the template: `kernel` (the profile's kernel; with an iSCSI root its
 * kernel_args carry the root's), `sanboot` (iPXE attaches the disk and boots
 * it) or `no-root` (the node needs a root disk that cannot be had now: the
 * script says why and takes its failed path, never boots something else).
 * How the disk is reached comes from a RootDiskProvider the server builds
 * from the iSCSI service, so this module does not depend on that service.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterModel } from '../cluster/model.ts';
import type { BootProfile, NodeRecord, RootDisk } from '../cluster/types.ts';
import { fileUrl, scriptUrl } from '../cluster/urls.ts';
import { configPath, type Config } from '../config/load.ts';
import { normalizeMac } from '../net/mac.ts';

export const BUILTIN_TEMPLATES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../boot-assets/templates');
export const NODE_TEMPLATE = 'node.ipxe';

/** Per-node call-back a node's init makes when it is up (the last boot-timeline stage). */
export function bootedUrl(base: string, mac: string): string {
  return `${base}/boot/${mac.replace(/:/g, '-')}/booted`;
}

/**
 * How a node reaches its network root disk, as the boot script needs it: the
 * iSCSI service's boot parameters, or why the disk cannot be had now (iSCSI
 * off, the node's disk in error). Structural, so the iSCSI service's answer
 * fits without this module importing it.
 */
export type RootDiskBoot =
  | {
    readonly available: true;
    /** sanboot: iPXE attaches the disk and boots from it; kernel: the profile's kernel with kernelArgs. */
    readonly boot: 'sanboot' | 'kernel';
    readonly initiatorIqn: string;
    /** RFC 4173 root path, what `sanboot` takes. */
    readonly rootPath: string;
    /** Kernel parameters that find the root (boot: kernel). */
    readonly kernelArgs: string;
    /** CHAP: the node logs in as username/password; the target must answer as reverseUsername/reversePassword. */
    readonly chap: {
      readonly username: string;
      readonly password: string;
      readonly reverseUsername: string;
      readonly reversePassword: string;
    };
  }
  | {
    readonly available: false;
    /** A sentence fragment for people: "iSCSI is off: tgt: tgtd is not answering ...". */
    readonly reason: string;
  };

/** Asked for nodes whose record or profile has a `root:`; undefined means no service can answer for it. */
export type RootDiskProvider = (node: NodeRecord) => RootDiskBoot | undefined;

/** The labels of node.ipxe that {{boot_method}} can name. */
export type BootMethod = 'kernel' | 'sanboot' | 'no-root';

const ROOT_KIND_NAMES: Readonly<Record<RootDisk['kind'], string>> = { iscsi: 'iSCSI' };

/**
 * Root-disk placeholders: a line that uses one is dropped where the node's
 * root gives it no value. The chap_ ones have a value only in the script
 * served to the node's own address (its DHCP reservation): the rest of a
 * script is public, its disk's secrets are not.
 */
const ROOT_PLACEHOLDERS = ['initiator_iqn', 'root_path', 'root_problem', 'chap_username', 'chap_password', 'chap_reverse_username', 'chap_reverse_password'] as const;
type RootPlaceholder = typeof ROOT_PLACEHOLDERS[number];
/** Placeholders of the kernel and its initrds: their lines are dropped for a node that boots no kernel. */
const KERNEL_PLACEHOLDERS = ['kernel_url', 'kernel_name', 'kernel_args', 'cmdline', 'root_args', 'initrd_args', 'initrd_url', 'initrd_name'] as const;

interface RootPlan {
  readonly method: BootMethod;
  /** Kernel arguments of the root (boot: kernel only). */
  readonly args: string;
  /** kernel: initiator_iqn; sanboot: initiator_iqn and root_path; both: chap_* for the node's own address; no-root: root_problem. */
  readonly vars: Partial<Record<RootPlaceholder, string>>;
}

/**
 * How this node boots, given its root disk and what the provider says about
 * it; pure. `client` is the address the script is asked from: only the
 * node's own address gets its CHAP credentials.
 */
export function rootPlan(profile: BootProfile, node: NodeRecord, rootDisk: RootDiskProvider | undefined, client?: string): RootPlan {
  const root = node.root ?? profile.root;
  if (!root) return { method: 'kernel', args: '', vars: {} };
  const kind = ROOT_KIND_NAMES[root.kind];
  const answer = rootDisk?.(node) ?? { available: false as const, reason: `no ${kind} service answers for it in this bootherd` };
  if (!answer.available) {
    return { method: 'no-root', args: '', vars: { root_problem: `its ${kind} root disk is not available: ${answer.reason}` } };
  }
  const chap = client === node.ip
    ? { chap_username: answer.chap.username, chap_password: answer.chap.password, chap_reverse_username: answer.chap.reverseUsername, chap_reverse_password: answer.chap.reversePassword }
    : {};
  // The root path is sanboot's; a kernel finds its root through the arguments (netroot=<root path>).
  return answer.boot === 'sanboot'
    ? { method: 'sanboot', args: '', vars: { initiator_iqn: answer.initiatorIqn, root_path: answer.rootPath, ...chap } }
    : { method: 'kernel', args: answer.kernelArgs, vars: { initiator_iqn: answer.initiatorIqn, ...chap } };
}

/** Where a node's telegraf writes (this head's /write and /api/v2/write) and the write-only ingest token. */
export interface TelemetryIngest { readonly url: string; readonly token: string }
const TELEMETRY_PLACEHOLDERS = ['telemetry_url', 'telemetry_token'] as const;

export class TemplateError extends Error {
  constructor(readonly template: string, message: string) {
    super(`${template}: ${message}`);
    this.name = 'TemplateError';
  }
}

type Vars = Record<string, string>;

function profileVars(base: string, profile: BootProfile, node: NodeRecord | undefined, mac: string, root = ''): { vars: Vars; initrds: Array<{ url: string; name: string }> } {
  const initrds = profile.initrd.map((f) => ({ url: fileUrl(base, f), name: path.posix.basename(f) }));
  // UEFI kernels (the EFI stub) find their initrds by name on the command line; BIOS kernels ignore these.
  const initrdArgs = initrds.map((i) => `initrd=${i.name}`).join(' ');
  const booted = node ? `bootherd_booted=${bootedUrl(base, mac)}` : '';
  return {
    vars: {
      profile: profile.name,
      kernel_url: fileUrl(base, profile.kernel),
      kernel_name: path.posix.basename(profile.kernel),
      // Unknown name=value words reach the node's init as environment variables: $bootherd_booted.
      kernel_args: [initrdArgs, profile.cmdline, root, booted].filter(Boolean).join(' '),
      cmdline: profile.cmdline,
      root_args: root,
      initrd_args: initrdArgs,
    },
    initrds,
  };
}

/** Template text by file, re-read when the file changes (an admin edits a template without a restart). */
const cache = new Map<string, { mtimeMs: number; size: number; text: string }>();

function templateText(dir: string, file: string): string {
  const full = path.join(dir, file);
  let st;
  try {
    st = statSync(full);
  } catch (e) {
    throw new TemplateError(full, `cannot read the template: ${(e as Error).message}`);
  }
  const hit = cache.get(full);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.text;
  const text = readFileSync(full, 'utf8');
  cache.set(full, { mtimeMs: st.mtimeMs, size: st.size, text });
  return text;
}

const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/g;

/**
 * Fills a template's placeholders; pure, exported for tests. `omitted` are
 * placeholders known to have no value for this machine: a line that uses one
 * is left out (a sanboot node's kernel line, a plain node's sanboot line).
 */
export function renderTemplate(name: string, text: string, vars: Vars, initrds: ReadonlyArray<{ url: string; name: string }>, omitted: ReadonlySet<string> = new Set()): string {
  const fill = (line: string, extra: Vars | undefined) => line.replace(PLACEHOLDER, (_, key: string) => {
    const v = extra?.[key] ?? vars[key];
    if (v === undefined) throw new TemplateError(name, `unknown placeholder {{${key}}}; known: ${[...new Set([...Object.keys(vars), 'initrd_url', 'initrd_name', ...omitted])].join(', ')}`);
    return v;
  });
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (omitted.size && [...line.matchAll(PLACEHOLDER)].some((m) => omitted.has(m[1]!))) continue;
    if (/\{\{\s*initrd_(url|name)\s*\}\}/.test(line)) {
      for (const i of initrds) out.push(fill(line, { initrd_url: i.url, initrd_name: i.name }));
    } else {
      out.push(fill(line, undefined));
    }
  }
  return out.join('\n');
}

/** The templates directory of a config (http.templates, relative to the cluster file), or the built-in one. */
export function templatesDir(config: Config): string {
  const dir = config.http.templates;
  if (!dir) return BUILTIN_TEMPLATES;
  return configPath(config, dir);
}

/**
 * The iPXE script for the machine with this MAC: its node's script, or the
 * unknown-MAC template (http.unknownTemplate) for a MAC no node has.
 * `rootDisk` answers for nodes with a `root:`; without it (or when it has no
 * answer) such a node gets the no-root path. `client` is the requester's
 * IPv4 address: the node's CHAP lines are rendered only for its own address.
 * Throws TemplateError when the template is missing or broken, or cannot boot
 * the node's root disk.
 */
export function renderNodeScript(model: ClusterModel, mac: string, httpBase: string, rootDisk?: RootDiskProvider, client?: string, telemetry?: TelemetryIngest): string {
  const canonical = normalizeMac(mac);
  const node = model.nodeByMac(canonical);
  const dir = templatesDir(model.config);
  const common: Vars = {
    mac: canonical,
    domain: model.domain,
    head: model.config.head.address,
    base_url: httpBase,
    script_url: scriptUrl(httpBase, canonical),
  };
  if (!node) {
    const file = model.config.http.unknownTemplate;
    const p = profileVars(httpBase, model.profile('default')!, undefined, canonical);
    return renderTemplate(file, templateText(dir, file), { ...common, ...p.vars }, p.initrds, new Set([...ROOT_PLACEHOLDERS, ...TELEMETRY_PLACEHOLDERS]));
  }
  const profile = model.profileOf(node);
  const root = rootPlan(profile, node, rootDisk, client);
  const p = profileVars(httpBase, profile, node, canonical, root.args);
  const vars: Vars = {
    ...common,
    ...p.vars,
    ...root.vars,
    name: node.name,
    fqdn: `${node.name}.${model.domain}`,
    ip: node.ip ?? '',
    booted_url: bootedUrl(httpBase, canonical),
    boot_method: root.method,
    ...(telemetry ? { telemetry_url: telemetry.url } : {}),
    // Like the CHAP lines: the ingest token only to the node's own address.
    ...(telemetry && client === node.ip ? { telemetry_token: telemetry.token } : {}),
  };
  const text = templateText(dir, NODE_TEMPLATE);
  // A template from before boot methods would run its kernel lines for a sanboot or no-root node: the wrong thing.
  if (root.method !== 'kernel' && !/\{\{\s*boot_method\s*\}\}/.test(text)) {
    throw new TemplateError(path.join(dir, NODE_TEMPLATE), `${node.name} needs the ${root.method} path (its root disk), but the template has no {{boot_method}}; see the built-in ${path.join(BUILTIN_TEMPLATES, NODE_TEMPLATE)}`);
  }
  // A template from before CHAP would boot without credentials: the target refuses, far from the cause.
  if (root.vars.initiator_iqn !== undefined && !/\{\{\s*chap_password\s*\}\}/.test(text)) {
    throw new TemplateError(path.join(dir, NODE_TEMPLATE), `${node.name} logs in to its iSCSI disk with CHAP, but the template has no {{chap_username}}/{{chap_password}} lines; see the built-in ${path.join(BUILTIN_TEMPLATES, NODE_TEMPLATE)}`);
  }
  const omitted = new Set<string>(ROOT_PLACEHOLDERS.filter((k) => root.vars[k] === undefined));
  for (const k of TELEMETRY_PLACEHOLDERS) if (vars[k] === undefined) omitted.add(k);
  if (root.method !== 'kernel') for (const k of KERNEL_PLACEHOLDERS) omitted.add(k);
  return renderTemplate(NODE_TEMPLATE, text, vars, p.initrds, omitted);
}
