/**
 * The LIO backend: the kernel's iSCSI target, driven through targetcli
 * (Debian's targetcli-fb), so that `targetcli ls` shows exactly what bootherd
 * made. One targetcli process per command (`targetcli <path> <command>
 * key=value ...`), the way an admin would script it, so that a failure names
 * the one command that failed.
 *
 * Reading: `targetcli saveconfig <temp file>` writes rtslib's JSON of the
 * whole configuration (to a file of ours: targetcli keeps backups only of
 * its default file), which is parsed here; `targetcli get global
 * auto_add_default_portal` says whether a new target comes with a 0.0.0.0
 * portal we must remove before adding ours.
 */
import { existsSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runChecked, StateError, ToolMissingError, type Availability, type IscsiBackend, type Runner } from './backend.ts';
import { secretsOf, type BackendShape, type Op } from './plan.ts';
import type { BackstoreState, Portal, TargetState, TargetSystemState } from './state.ts';

export const LIO_CONFIGFS = '/sys/kernel/config/target';
const HINT = "install Debian's targetcli-fb";

export interface TargetcliOptions {
  readonly run: Runner;
  /** Where LIO shows itself; its absence means no LIO in this kernel. */
  readonly configfs?: string;
  readonly bin?: string;
}

/** rtslib's saveconfig JSON, the parts we read. */
interface RtslibDump {
  storage_objects?: Array<{ name?: string; plugin?: string; dev?: string }>;
  targets?: Array<{
    wwn?: string;
    fabric?: string;
    tpgs?: Array<{
      tag?: number;
      attributes?: { authentication?: number };
      luns?: Array<{ index?: number; storage_object?: string }>;
      node_acls?: Array<{ node_wwn?: string; chap_userid?: string; chap_mutual_userid?: string }>;
      portals?: Array<{ ip_address?: string; port?: number }>;
    }>;
  }>;
}

export const DEFAULT_PORTAL: Portal = { address: '0.0.0.0', port: 3260 };

let tempCounter = 0;

export class TargetcliBackend implements IscsiBackend {
  readonly name = 'targetcli' as const;
  readonly shape: BackendShape = { lun: 0, backstores: true, portals: 'target', acl: 'initiator', chap: 'acl' };
  private readonly run: Runner;
  private readonly configfs: string;
  private readonly bin: string;

  constructor(opts: TargetcliOptions) {
    this.run = opts.run;
    this.configfs = opts.configfs ?? LIO_CONFIGFS;
    this.bin = opts.bin ?? 'targetcli';
  }

  async probe(): Promise<Availability> {
    if (!existsSync(this.configfs)) {
      return { ok: false, reason: `no LIO target in this kernel: ${this.configfs} does not exist (load target_core_mod and iscsi_target_mod with configfs mounted, or use iscsi.backend: tgt)` };
    }
    try {
      await this.read();
      return { ok: true };
    } catch (e) {
      if (e instanceof ToolMissingError) return { ok: false, reason: `${e.message}; iSCSI needs it to drive LIO` };
      return { ok: false, reason: `targetcli does not work here: ${(e as Error).message}` };
    }
  }

  private cli(args: readonly string[], secrets: readonly string[] = []): Promise<string> {
    return runChecked(this.run, this.bin, args, secrets);
  }

  async read(): Promise<TargetSystemState> {
    const file = path.join(os.tmpdir(), `bootherd-lio-${process.pid}-${tempCounter++}.json`);
    let dump: RtslibDump;
    try {
      await this.cli(['saveconfig', file]);
      const text = await readFile(file, 'utf8');
      try {
        dump = JSON.parse(text) as RtslibDump;
      } catch (e) {
        throw new StateError(`targetcli saveconfig wrote something that is not JSON: ${(e as Error).message}`);
      }
    } finally {
      await unlink(file).catch(() => undefined);
    }
    const pref = await this.cli(['get', 'global', 'auto_add_default_portal']);
    const autoPortal = /auto_add_default_portal\s*=\s*true/i.test(pref);
    return { ...parseRtslibDump(dump), ...(autoPortal ? { defaultPortal: DEFAULT_PORTAL } : {}) };
  }

  async apply(ops: readonly Op[], onApplied?: (op: Op) => void): Promise<void> {
    for (const op of ops) {
      await this.cli(targetcliArgs(op), secretsOf(op));
      onApplied?.(op);
    }
  }

  async save(): Promise<void> {
    await this.cli(['saveconfig']);
  }
}

/** The targetcli command line (after `targetcli`) for one operation. */
export function targetcliArgs(o: Op): string[] {
  const tpg = (iqn: string) => `/iscsi/${iqn}/tpg1`;
  switch (o.op) {
    case 'create-backstore':
      return [`/backstores/${o.kind}`, 'create', `name=${o.name}`, o.kind === 'fileio' ? `file_or_dev=${o.path}` : `dev=${o.path}`];
    case 'delete-backstore':
      return [`/backstores/${o.kind}`, 'delete', `name=${o.name}`];
    case 'create-target':
      return ['/iscsi', 'create', `wwn=${o.iqn}`];
    case 'delete-target':
      return ['/iscsi', 'delete', `wwn=${o.iqn}`];
    case 'create-lun':
      if (!o.backstore) throw new Error(`LIO LUNs need a backstore (${o.iqn} LUN ${o.lun})`);
      return [`${tpg(o.iqn)}/luns`, 'create', `storage_object=/backstores/${o.backstore.kind}/${o.backstore.name}`, `lun=${o.lun}`, 'add_mapped_luns=true'];
    case 'delete-lun':
      return [`${tpg(o.iqn)}/luns`, 'delete', `lun=${o.lun}`];
    case 'add-acl':
      return [`${tpg(o.iqn)}/acls`, 'create', `wwn=${o.initiator}`, 'add_mapped_luns=true'];
    case 'remove-acl':
      return [`${tpg(o.iqn)}/acls`, 'delete', `wwn=${o.initiator}`];
    case 'add-portal':
      if (!o.iqn) throw new Error('LIO portals belong to a target');
      return [`${tpg(o.iqn)}/portals`, 'create', `ip_address=${o.portal.address}`, `ip_port=${o.portal.port}`];
    case 'remove-portal':
      return [`${tpg(o.iqn)}/portals`, 'delete', `ip_address=${o.portal.address}`, `ip_port=${o.portal.port}`];
    case 'require-auth':
      return [tpg(o.iqn), 'set', 'attribute', 'authentication=1', 'generate_node_acls=0'];
    case 'set-acl-auth':
      return [`${tpg(o.iqn)}/acls/${o.initiator}`, 'set', 'auth', `userid=${o.chap.user}`, `password=${o.chap.secret}`, `mutual_userid=${o.chap.mutualUser}`, `mutual_password=${o.chap.mutualSecret}`];
    case 'create-account':
    case 'delete-account':
    case 'bind-account':
    case 'unbind-account':
      throw new Error(`LIO keeps CHAP in ACLs, not accounts (${o.op} ${o.user})`);
  }
}

/**
 * rtslib's JSON to our state. Only iSCSI targets count; of each, TPG 1
 * (the one targetcli creates). A target with other TPGs is still read by its
 * first, and its IQN tells whether it is ours at all.
 */
export function parseRtslibDump(dump: RtslibDump): TargetSystemState {
  const backstores: BackstoreState[] = [];
  const paths = new Map<string, string>();
  for (const so of dump.storage_objects ?? []) {
    if (!so.name || (so.plugin !== 'fileio' && so.plugin !== 'block')) continue;
    backstores.push({ kind: so.plugin, name: so.name, path: so.dev ?? '' });
    paths.set(`/backstores/${so.plugin}/${so.name}`, so.dev ?? '');
  }
  const targets: TargetState[] = [];
  for (const t of dump.targets ?? []) {
    if (t.fabric !== 'iscsi' || !t.wwn) continue;
    const tpg = (t.tpgs ?? []).find((g) => g.tag === 1) ?? t.tpgs?.[0];
    const acls = tpg?.node_acls ?? [];
    targets.push({
      iqn: t.wwn,
      luns: (tpg?.luns ?? []).map((l) => {
        const so = l.storage_object ?? '';
        const m = /^\/backstores\/(fileio|block|[a-z_]+)\/(.+)$/.exec(so);
        const kind = m?.[1];
        return {
          lun: l.index ?? -1,
          path: paths.get(so) ?? so,
          ...(m && (kind === 'fileio' || kind === 'block') ? { backstore: { kind, name: m[2]! } } : {}),
        };
      }),
      acls: acls.map((a) => a.node_wwn ?? '').filter(Boolean),
      portals: (tpg?.portals ?? []).map((p) => ({ address: p.ip_address ?? '', port: p.port ?? 3260 })),
      auth: { incoming: acls.map((a) => a.chap_userid ?? '').filter(Boolean), outgoing: acls.map((a) => a.chap_mutual_userid ?? '').filter(Boolean) },
      authRequired: tpg?.attributes?.authentication === 1,
    });
  }
  return { targets, backstores, portals: [], accounts: [] };
}
