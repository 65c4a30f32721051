/**
 * The iPXE script a booting machine fetches after DHCP: rendered from a
 * template (boot-assets/templates/node.ipxe, or the unknown-MAC template) with
 * the node record and its profile. Independent of HTTP, so the TFTP service
 * can serve the same script to an iPXE that asks by TFTP.
 *
 * Templates are plain text with {{variable}} placeholders. A line that uses
 * {{initrd_url}} or {{initrd_name}} is repeated once per initrd of the profile
 * (and dropped for a profile without one). A placeholder the template does not
 * know is an error that names it, not a silently empty string: a script with a
 * hole in its kernel line would fail on the node, far from the cause.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterModel } from '../cluster/model.ts';
import type { BootProfile, NodeRecord } from '../cluster/types.ts';
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
 * Kernel arguments that tell the node where its root filesystem is (iSCSI,
 * NFS, or RAM). The hook for the root filesystem support: today a profile's
 * root is whatever its cmdline says, so this adds nothing.
 */
export function rootArgs(_profile: BootProfile, _node: NodeRecord | undefined): string {
  return '';
}

export class TemplateError extends Error {
  constructor(readonly template: string, message: string) {
    super(`${template}: ${message}`);
    this.name = 'TemplateError';
  }
}

type Vars = Record<string, string>;

function profileVars(base: string, profile: BootProfile, node: NodeRecord | undefined, mac: string): { vars: Vars; initrds: Array<{ url: string; name: string }> } {
  const initrds = profile.initrd.map((f) => ({ url: fileUrl(base, f), name: path.posix.basename(f) }));
  // UEFI kernels (the EFI stub) find their initrds by name on the command line; BIOS kernels ignore these.
  const initrdArgs = initrds.map((i) => `initrd=${i.name}`).join(' ');
  const root = rootArgs(profile, node);
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

/** Fills a template's placeholders; pure, exported for tests. */
export function renderTemplate(name: string, text: string, vars: Vars, initrds: ReadonlyArray<{ url: string; name: string }>): string {
  const fill = (line: string, extra: Vars | undefined) => line.replace(PLACEHOLDER, (_, key: string) => {
    const v = extra?.[key] ?? vars[key];
    if (v === undefined) throw new TemplateError(name, `unknown placeholder {{${key}}}; known: ${[...Object.keys(vars), 'initrd_url', 'initrd_name'].join(', ')}`);
    return v;
  });
  const out: string[] = [];
  for (const line of text.split('\n')) {
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
 * Throws TemplateError when the template is missing or broken.
 */
export function renderNodeScript(model: ClusterModel, mac: string, httpBase: string): string {
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
    return renderTemplate(file, templateText(dir, file), { ...common, ...p.vars }, p.initrds);
  }
  const p = profileVars(httpBase, model.profileOf(node), node, canonical);
  const vars: Vars = {
    ...common,
    ...p.vars,
    name: node.name,
    fqdn: `${node.name}.${model.domain}`,
    ip: node.ip,
    booted_url: bootedUrl(httpBase, canonical),
  };
  return renderTemplate(NODE_TEMPLATE, templateText(dir, NODE_TEMPLATE), vars, p.initrds);
}
