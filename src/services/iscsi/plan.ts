/**
 * The reconcile planner: desired exports (from the cluster model) against the
 * target's actual state (from a backend's read) give an ordered list of
 * operations. Pure: no I/O, no clock, so every case is a table row in
 * test/unit/iscsi-plan.test.ts.
 *
 * Order matters to the targets: removals first (so a backstore name or a
 * portal is free before it is reused), then creations; within a new target,
 * portal, then LUN, then ACL (an LIO ACL maps the LUNs that exist when it is
 * made). Only targets under our IQN prefix and storage objects under our
 * backstore prefix are ever removed, and never one a foreign target uses.
 */
import { samePortal, type BackstoreRef, type ChapCredentials, type DesiredExport, type DesiredState, type Portal, type TargetState, type TargetSystemState } from './state.ts';

export type Op =
  | { readonly op: 'create-backstore'; readonly kind: BackstoreRef['kind']; readonly name: string; readonly path: string }
  | { readonly op: 'delete-backstore'; readonly kind: BackstoreRef['kind']; readonly name: string }
  | { readonly op: 'create-target'; readonly iqn: string }
  | { readonly op: 'delete-target'; readonly iqn: string }
  | { readonly op: 'create-lun'; readonly iqn: string; readonly lun: number; readonly path: string; readonly backstore?: BackstoreRef }
  | { readonly op: 'delete-lun'; readonly iqn: string; readonly lun: number }
  | { readonly op: 'add-acl'; readonly iqn: string; readonly initiator: string }
  | { readonly op: 'remove-acl'; readonly iqn: string; readonly initiator: string }
  /** Without iqn: a portal of the whole daemon (tgt). */
  | { readonly op: 'add-portal'; readonly iqn?: string; readonly portal: Portal }
  | { readonly op: 'remove-portal'; readonly iqn: string; readonly portal: Portal }
  /** tgt: a CHAP account of the daemon, then bound to a target (outgoing: the name the target answers with). */
  | { readonly op: 'create-account'; readonly user: string; readonly secret: string }
  | { readonly op: 'delete-account'; readonly user: string }
  | { readonly op: 'bind-account'; readonly iqn: string; readonly user: string; readonly outgoing: boolean }
  | { readonly op: 'unbind-account'; readonly iqn: string; readonly user: string; readonly outgoing: boolean }
  /** LIO: CHAP required on the target's TPG (attribute authentication=1), and the credentials on the node's ACL. */
  | { readonly op: 'require-auth'; readonly iqn: string }
  | { readonly op: 'set-acl-auth'; readonly iqn: string; readonly initiator: string; readonly chap: ChapCredentials };

/** What differs between the backends, as far as planning goes. */
export interface BackendShape {
  /** LUN number of a node's disk: 0 on LIO; 1 on tgt, whose LUN 0 is its controller. */
  readonly lun: number;
  /** LIO LUNs point at named storage objects; tgt LUNs take the path itself. */
  readonly backstores: boolean;
  /** 'target': each target has its own portals (LIO); 'daemon': one set for every target (tgt). */
  readonly portals: 'target' | 'daemon';
  /**
   * What the ACL names: the node's address (tgt, which admits an initiator
   * whose address OR name matches, so a name entry would let the public name
   * in from anywhere) or its initiator name (LIO, which has no address ACL).
   */
  readonly acl: 'address' | 'initiator';
  /** Where CHAP credentials live: daemon accounts bound to targets (tgt) or the ACL (LIO). */
  readonly chap: 'accounts' | 'acl';
}

export interface Plan {
  readonly ops: readonly Op[];
  /** Targets outside our prefix: reported, never touched. */
  readonly foreign: readonly string[];
  /** Things found that bootherd will not fix by itself (a foreign target using our backstore, ...). */
  readonly warnings: readonly string[];
  /** Nodes whose export could not be planned (see warnings); the others go ahead. */
  readonly skipped: readonly string[];
  /** Files that backed LUNs of the targets this plan deletes (candidates for iscsi.removeDisks). */
  readonly releasedDisks: readonly string[];
}

export function backstoreOf(e: DesiredExport, prefix: string): BackstoreRef {
  return { kind: e.disk.kind === 'file' ? 'fileio' : 'block', name: `${prefix}${e.node}` };
}

const key = (b: BackstoreRef) => `${b.kind}/${b.name}`;

export function plan(desired: DesiredState, actual: TargetSystemState, shape: BackendShape): Plan {
  const owned = (iqn: string) => iqn.startsWith(desired.targetPrefix);
  const exports = [...desired.exports].sort((a, b) => (a.iqn < b.iqn ? -1 : a.iqn > b.iqn ? 1 : 0));
  const wanted = new Map(exports.map((e) => [e.iqn, e]));
  const targets = [...actual.targets].sort((a, b) => (a.iqn < b.iqn ? -1 : a.iqn > b.iqn ? 1 : 0));
  const byIqn = new Map(targets.map((t) => [t.iqn, t]));
  const foreign = targets.filter((t) => !owned(t.iqn)).map((t) => t.iqn);
  const warnings: string[] = [];
  const skipped = new Set<string>();
  const releasedDisks: string[] = [];

  // Storage objects a foreign target uses: ours in name or not, they stay.
  const usedByForeign = new Map<string, string>();
  for (const t of targets) if (!owned(t.iqn)) for (const l of t.luns) if (l.backstore) usedByForeign.set(key(l.backstore), t.iqn);

  // Backstores (LIO): which to keep, create and delete.
  const keepBackstores = new Set<string>();
  const createBackstores: Op[] = [];
  if (shape.backstores) {
    for (const e of exports) {
      const want = backstoreOf(e, desired.backstorePrefix);
      const have = actual.backstores.find((b) => b.kind === want.kind && b.name === want.name);
      if (have && have.path === e.disk.path) { keepBackstores.add(key(want)); continue; }
      const user = usedByForeign.get(key(want));
      if (have && user) {
        warnings.push(`backstore /backstores/${key(want)} points at ${have.path}, not ${e.disk.path}, and foreign target ${user} uses it: node ${e.node} is not exported until it is freed`);
        skipped.add(e.node);
        keepBackstores.add(key(want)); // warned about once, here
        continue;
      }
      createBackstores.push({ op: 'create-backstore', kind: want.kind, name: want.name, path: e.disk.path });
      keepBackstores.add(key(want));
    }
  }
  const replacing = new Set(createBackstores.map((c) => (c.op === 'create-backstore' ? key(c) : '')));

  const removals: Op[] = [];
  const additions: Op[] = [];
  const createdAccounts = new Set<string>();

  // Our targets that no node wants any more.
  for (const t of targets) {
    if (!owned(t.iqn) || wanted.has(t.iqn) || desired.leave?.includes(t.iqn)) continue;
    removals.push({ op: 'delete-target', iqn: t.iqn });
    for (const l of t.luns) releasedDisks.push(l.path);
  }

  // A daemon listening on the wildcard address at our port already serves our portal.
  const daemonServes = (p: Portal) => samePortal(p, desired.portal) || (p.port === desired.portal.port && (p.address === '0.0.0.0' || p.address === '::'));
  if (shape.portals === 'daemon' && exports.some((e) => !skipped.has(e.node)) && !actual.portals.some(daemonServes)) {
    additions.push({ op: 'add-portal', portal: desired.portal });
  }

  for (const e of exports) {
    if (skipped.has(e.node)) continue;
    const t: TargetState | undefined = byIqn.get(e.iqn);
    const backstore = shape.backstores ? backstoreOf(e, desired.backstorePrefix) : undefined;
    const isOurLun = (l: TargetState['luns'][number]) =>
      l.lun === shape.lun && l.path === e.disk.path && (!backstore || (l.backstore !== undefined && key(l.backstore) === key(backstore)));
    const aclEntry = shape.acl === 'address' ? e.address : e.initiator;
    let portals: readonly Portal[];
    let lunOk = false;
    let aclOk = false;
    if (!t) {
      additions.push({ op: 'create-target', iqn: e.iqn });
      portals = shape.portals === 'target' && actual.defaultPortal ? [actual.defaultPortal] : [];
    } else {
      portals = t.portals;
      for (const l of t.luns) {
        // A LUN on a backstore we are about to replace goes too, even if it looks right.
        if (isOurLun(l) && !(backstore && replacing.has(key(backstore)))) lunOk = true;
        else removals.push({ op: 'delete-lun', iqn: e.iqn, lun: l.lun });
      }
      for (const a of t.acls) {
        if (a === aclEntry) aclOk = true;
        else removals.push({ op: 'remove-acl', iqn: e.iqn, initiator: a });
      }
    }
    const have = t?.auth ?? { incoming: [], outgoing: [] };
    if (shape.portals === 'target') {
      let portalOk = false;
      for (const p of portals) {
        if (samePortal(p, desired.portal)) portalOk = true;
        else (t ? removals : additions).push({ op: 'remove-portal', iqn: e.iqn, portal: p });
      }
      if (!portalOk) additions.push({ op: 'add-portal', iqn: e.iqn, portal: desired.portal });
    }
    if (!lunOk) additions.push({ op: 'create-lun', iqn: e.iqn, lun: shape.lun, path: e.disk.path, ...(backstore ? { backstore } : {}) });
    // CHAP is in place before the ACL lets the node in, so the target is never open without it.
    if (shape.chap === 'accounts') {
      for (const [user, secret, outgoing] of [[e.chap.user, e.chap.secret, false], [e.chap.mutualUser, e.chap.mutualSecret, true]] as const) {
        const bound = outgoing ? have.outgoing : have.incoming;
        for (const u of bound) if (u !== user) removals.push({ op: 'unbind-account', iqn: e.iqn, user: u, outgoing });
        if (bound.includes(user)) continue;
        if (!actual.accounts.includes(user) && !createdAccounts.has(user)) {
          additions.push({ op: 'create-account', user, secret });
          createdAccounts.add(user);
        }
        additions.push({ op: 'bind-account', iqn: e.iqn, user, outgoing });
      }
      if (!aclOk) additions.push({ op: 'add-acl', iqn: e.iqn, initiator: aclEntry });
    } else {
      if (!t?.authRequired) additions.push({ op: 'require-auth', iqn: e.iqn });
      if (!aclOk) additions.push({ op: 'add-acl', iqn: e.iqn, initiator: aclEntry });
      const authOk = aclOk && have.incoming.length === 1 && have.incoming[0] === e.chap.user && have.outgoing.length === 1 && have.outgoing[0] === e.chap.mutualUser;
      if (!authOk) additions.push({ op: 'set-acl-auth', iqn: e.iqn, initiator: e.initiator, chap: e.chap });
    }
  }

  // tgt accounts of ours nothing wants: after the targets and bindings that used them are gone.
  const deleteAccounts: Op[] = [];
  if (shape.chap === 'accounts') {
    const keep = new Set(exports.flatMap((e) => [e.chap.user, e.chap.mutualUser]));
    // Accounts still bound to a target we leave as it is (or a foreign one) stay.
    for (const t of targets) if (!owned(t.iqn) || desired.leave?.includes(t.iqn)) for (const u of [...t.auth.incoming, ...t.auth.outgoing]) keep.add(u);
    for (const a of actual.accounts) if (a.startsWith(desired.accountPrefix) && !keep.has(a)) deleteAccounts.push({ op: 'delete-account', user: a });
  }

  // Our storage objects nothing wants: after the LUNs on them are gone, before new ones take their names.
  const deleteBackstores: Op[] = [];
  if (shape.backstores) {
    for (const b of actual.backstores) {
      if (!b.name.startsWith(desired.backstorePrefix) || (keepBackstores.has(key(b)) && !replacing.has(key(b)))) continue;
      const user = usedByForeign.get(key(b));
      if (user) { warnings.push(`backstore /backstores/${key(b)} has our name but foreign target ${user} uses it: left alone`); continue; }
      deleteBackstores.push({ op: 'delete-backstore', kind: b.kind, name: b.name });
    }
  }

  return {
    ops: [...removals, ...deleteAccounts, ...deleteBackstores, ...createBackstores, ...additions],
    foreign,
    warnings,
    skipped: [...skipped],
    releasedDisks,
  };
}

/** One line per operation, for logs and errors. */
export function describeOp(o: Op): string {
  switch (o.op) {
    case 'create-backstore': return `create backstore ${o.kind}/${o.name} on ${o.path}`;
    case 'delete-backstore': return `delete backstore ${o.kind}/${o.name}`;
    case 'create-target': return `create target ${o.iqn}`;
    case 'delete-target': return `delete target ${o.iqn}`;
    case 'create-lun': return `create LUN ${o.lun} of ${o.iqn} on ${o.backstore ? `${o.backstore.kind}/${o.backstore.name}` : o.path}`;
    case 'delete-lun': return `delete LUN ${o.lun} of ${o.iqn}`;
    case 'add-acl': return `allow ${o.initiator} into ${o.iqn}`;
    case 'remove-acl': return `remove ${o.initiator} from ${o.iqn}`;
    case 'add-portal': return `add portal ${o.portal.address}:${o.portal.port}${o.iqn ? ` to ${o.iqn}` : ''}`;
    case 'remove-portal': return `remove portal ${o.portal.address}:${o.portal.port} from ${o.iqn}`;
    case 'create-account': return `create CHAP account ${o.user}`;
    case 'delete-account': return `delete CHAP account ${o.user}`;
    case 'bind-account': return `bind CHAP account ${o.user}${o.outgoing ? ' (outgoing)' : ''} to ${o.iqn}`;
    case 'unbind-account': return `unbind CHAP account ${o.user}${o.outgoing ? ' (outgoing)' : ''} from ${o.iqn}`;
    case 'require-auth': return `require CHAP on ${o.iqn}`;
    case 'set-acl-auth': return `set CHAP ${o.chap.user} / ${o.chap.mutualUser} on ${o.initiator} of ${o.iqn}`;
  }
}

/** The secrets an operation carries: kept out of logs and errors. */
export function secretsOf(o: Op): string[] {
  if (o.op === 'create-account') return [o.secret];
  if (o.op === 'set-acl-auth') return [o.chap.secret, o.chap.mutualSecret];
  return [];
}
