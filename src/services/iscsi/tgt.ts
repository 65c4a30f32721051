/**
 * The tgt backend: Debian's userspace target daemon tgtd, driven through
 * tgtadm. It runs anywhere (no configfs, no kernel modules), which is why the
 * real-initiator tests use it. Differences from LIO the planner knows of
 * (BackendShape): LUN 0 of every tgt target is its controller, so the disk is
 * LUN 1; LUNs take the file path directly (no named backstores); portals
 * belong to the daemon, not to a target. tgt numbers targets (tid): the
 * numbers are read with the state and new ones allocated above them.
 *
 * tgtd keeps its configuration in memory only; bootherd's reconcile at start
 * restores it (a node cannot boot before bootherd answers its DHCP anyway).
 * There is deliberately no tgt-admin config file: tgt-admin binds "ALL"
 * (any initiator address) to every target whose config has no
 * initiator-address line, and tgtd lets an initiator in when its address OR
 * its name matches, so a file with our name-only ACLs would, once loaded by
 * tgt-admin, let every initiator into every node's disk.
 */
import { runChecked, StateError, ToolError, ToolMissingError, type Availability, type IscsiBackend, type Runner } from './backend.ts';
import { secretsOf, type BackendShape, type Op } from './plan.ts';
import type { Portal, TargetState, TargetSystemState } from './state.ts';

const LLD = ['--lld', 'iscsi'];

export interface TgtOptions {
  readonly run: Runner;
  /** tgtd's management port (tgtd -C N); 0 is the daemon's default. */
  readonly controlPort?: number;
  readonly bin?: string;
}

export interface TgtTarget extends TargetState {
  readonly tid: number;
}

export class TgtBackend implements IscsiBackend {
  readonly name = 'tgt' as const;
  readonly shape: BackendShape = { lun: 1, backstores: false, portals: 'daemon', acl: 'address', chap: 'accounts' };
  private readonly run: Runner;
  private readonly bin: string;
  private readonly control: string[];
  /** Target numbers as last read (and as created since). */
  private tids = new Map<string, number>();

  constructor(private readonly opts: TgtOptions) {
    this.run = opts.run;
    this.bin = opts.bin ?? 'tgtadm';
    this.control = opts.controlPort ? ['-C', String(opts.controlPort)] : [];
  }

  private adm(args: readonly string[], secrets: readonly string[] = []): Promise<string> {
    return runChecked(this.run, this.bin, [...this.control, ...LLD, ...args], secrets);
  }

  async probe(): Promise<Availability> {
    try {
      await this.read();
      return { ok: true };
    } catch (e) {
      if (e instanceof ToolMissingError) return { ok: false, reason: `${e.message}; iSCSI needs it to drive tgtd` };
      if (e instanceof ToolError) return { ok: false, reason: `tgtd is not answering on control port ${this.opts.controlPort ?? 0} (is it running? tgtd -C N matches iscsi.tgt.controlPort): ${e.message}` };
      return { ok: false, reason: (e as Error).message };
    }
  }

  async read(): Promise<TargetSystemState> {
    const targets = parseTgtTargets(await this.adm(['--mode', 'target', '--op', 'show']));
    const portals = parseTgtPortals(await this.adm(['--mode', 'portal', '--op', 'show']));
    const accounts = parseTgtAccounts(await this.adm(['--mode', 'account', '--op', 'show']));
    this.tids = new Map(targets.map((t) => [t.iqn, t.tid]));
    return { targets, backstores: [], portals, accounts };
  }

  private tid(iqn: string): string {
    const tid = this.tids.get(iqn);
    if (tid === undefined) throw new StateError(`tgt has no target ${iqn} (it was there when read; removed by hand since?)`);
    return String(tid);
  }

  async apply(ops: readonly Op[], onApplied?: (op: Op) => void): Promise<void> {
    for (const o of ops) {
      await this.adm(this.args(o), secretsOf(o));
      if (o.op === 'delete-target') this.tids.delete(o.iqn);
      onApplied?.(o);
    }
  }

  /** tgtadm arguments (after -C and --lld) for one operation; allocates the tid of a new target. */
  args(o: Op): string[] {
    switch (o.op) {
      case 'create-target': {
        let tid = 1;
        for (const t of this.tids.values()) tid = Math.max(tid, t + 1);
        this.tids.set(o.iqn, tid);
        return ['--mode', 'target', '--op', 'new', '--tid', String(tid), '--targetname', o.iqn];
      }
      case 'delete-target':
        // --force: a node still logged in does not keep the export of a node that was removed.
        return ['--mode', 'target', '--op', 'delete', '--force', '--tid', this.tid(o.iqn)];
      case 'create-lun':
        return ['--mode', 'logicalunit', '--op', 'new', '--tid', this.tid(o.iqn), '--lun', String(o.lun), '--backing-store', o.path];
      case 'delete-lun':
        return ['--mode', 'logicalunit', '--op', 'delete', '--tid', this.tid(o.iqn), '--lun', String(o.lun)];
      case 'add-acl':
        return ['--mode', 'target', '--op', 'bind', '--tid', this.tid(o.iqn), ...aclArgs(o.initiator)];
      case 'remove-acl':
        return ['--mode', 'target', '--op', 'unbind', '--tid', this.tid(o.iqn), ...aclArgs(o.initiator)];
      case 'add-portal':
        return ['--mode', 'portal', '--op', 'new', '--param', `portal=${o.portal.address}:${o.portal.port}`];
      case 'remove-portal':
        return ['--mode', 'portal', '--op', 'delete', '--param', `portal=${o.portal.address}:${o.portal.port}`];
      case 'create-account':
        return ['--mode', 'account', '--op', 'new', '--user', o.user, '--password', o.secret];
      case 'delete-account':
        return ['--mode', 'account', '--op', 'delete', '--user', o.user];
      case 'bind-account':
        return ['--mode', 'account', '--op', 'bind', '--tid', this.tid(o.iqn), '--user', o.user, ...(o.outgoing ? ['--outgoing'] : [])];
      case 'unbind-account':
        return ['--mode', 'account', '--op', 'unbind', '--tid', this.tid(o.iqn), '--user', o.user, ...(o.outgoing ? ['--outgoing'] : [])];
      case 'create-backstore':
      case 'delete-backstore':
        throw new Error(`tgt has no named backstores (${o.op} ${o.name})`);
      case 'require-auth':
      case 'set-acl-auth':
        throw new Error(`tgt keeps CHAP in accounts, not ACLs (${o.op} ${o.iqn})`);
    }
  }

  /** Nothing to save: see the note at the top of this file. */
  async save(): Promise<void> {}
}

/** An ACL entry is an initiator name (iqn./eui./naa.) or an address (or ALL). */
function aclArgs(entry: string): string[] {
  return /^(iqn|eui|naa)\./i.test(entry) ? ['--initiator-name', entry] : ['--initiator-address', entry];
}

/**
 * `tgtadm --mode target --op show`:
 *   Target 1: iqn...
 *       LUN information:
 *           LUN: 1
 *               Backing store path: /path
 *       Account information:
 *           user (incoming), user (outgoing)
 *       ACL information:
 *           iqn.... (or ALL, or an address)
 */
export function parseTgtTargets(text: string): TgtTarget[] {
  const out: Array<{ tid: number; iqn: string; luns: Array<{ lun: number; path: string }>; acls: string[]; incoming: string[]; outgoing: string[] }> = [];
  let section = '';
  let lun: { lun: number; path: string } | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const target = /^Target (\d+): (\S+)$/.exec(raw);
    if (target) { out.push({ tid: Number(target[1]), iqn: target[2]!, luns: [], acls: [], incoming: [], outgoing: [] }); section = ''; lun = undefined; continue; }
    const current = out[out.length - 1];
    if (!current) throw new StateError(`tgtadm show: expected "Target N: <iqn>" first, got ${JSON.stringify(raw)}`);
    // Section headers sit at 4 spaces of indentation, their contents deeper.
    if (/^ {4}\S.*:$/.test(raw)) { section = line.slice(0, -1); lun = undefined; continue; }
    if (section === 'LUN information') {
      const l = /^LUN: (\d+)$/.exec(line);
      if (l) { lun = { lun: Number(l[1]), path: '' }; current.luns.push(lun); continue; }
      const p = /^Backing store path: (.*)$/.exec(line);
      if (p && lun) lun.path = p[1] === 'None' ? '' : p[1]!;
    } else if (section === 'ACL information') {
      current.acls.push(line);
    } else if (section === 'Account information') {
      const out = / \(outgoing\)$/.exec(line);
      if (out) current.outgoing.push(line.slice(0, out.index));
      else current.incoming.push(line);
    }
  }
  // LUN 0 is tgt's own controller on every target: not an export.
  return out.map((t) => ({ tid: t.tid, iqn: t.iqn, luns: t.luns.filter((l) => l.lun !== 0), acls: t.acls, portals: [], auth: { incoming: t.incoming, outgoing: t.outgoing } }));
}

/** `tgtadm --mode account --op show`: "Account list:" then one user name a line. */
export function parseTgtAccounts(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && l !== 'Account list:');
}

/** `tgtadm --mode portal --op show`: "Portal: 198.18.0.1:3260,1" (IPv6 in brackets). */
export function parseTgtPortals(text: string): Portal[] {
  const out: Portal[] = [];
  for (const line of text.split('\n')) {
    const m = /^Portal: \[?([^\]]*?)\]?:(\d+),\d+$/.exec(line.trim());
    if (m) out.push({ address: m[1]!, port: Number(m[2]) });
  }
  return out;
}
