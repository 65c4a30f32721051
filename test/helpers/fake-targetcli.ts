/**
 * A recording stand-in for targetcli, for machines without LIO (this one):
 * it records every argv and keeps a small model of LIO's configuration that
 * its commands change the way targetcli-fb 2.1.53 does (rtslib's saveconfig
 * JSON, a 0.0.0.0:3260 portal on new targets while auto_add_default_portal is
 * true, LUNs mapped into ACLs, a storage object's LUNs going with it). Errors
 * come back as targetcli's do: exit 1 and a message on stderr.
 */
import { writeFileSync } from 'node:fs';
import type { CommandResult, Runner } from '../../src/services/iscsi/backend.ts';
import { ToolMissingError } from '../../src/services/iscsi/backend.ts';

export interface LioModel {
  storage_objects: Array<{ name: string; plugin: string; dev: string }>;
  targets: Array<{
    wwn: string;
    fabric: string;
    tpgs: Array<{
      tag: number;
      attributes?: { authentication?: number; generate_node_acls?: number };
      luns: Array<{ index: number; storage_object: string }>;
      node_acls: Array<{
        node_wwn: string; mapped_luns: Array<{ index: number; tpg_lun: number }>;
        chap_userid?: string; chap_password?: string; chap_mutual_userid?: string; chap_mutual_password?: string;
      }>;
      portals: Array<{ ip_address: string; port: number }>;
    }>;
  }>;
}

export interface FakeTargetcli {
  readonly run: Runner;
  readonly lio: LioModel;
  /** Every argv (after `targetcli`), reads included. */
  readonly calls: string[][];
  /** Commands that changed or saved something (reads left out). */
  changes(): string[][];
  saves: number;
  autoDefaultPortal: boolean;
  /** Fail the n-th (1-based) changing command from now on with this stderr. */
  failAt(n: number, stderr: string): void;
  /** Pretend changes succeed but do nothing (a target that does not keep what it is told). */
  ignoreChanges: boolean;
  missing: boolean;
}

const ok = (stdout = ''): CommandResult => ({ code: 0, stdout, stderr: '' });
const fail = (stderr: string): CommandResult => ({ code: 1, stdout: '', stderr });

export function fakeTargetcli(initial?: LioModel): FakeTargetcli {
  const lio: LioModel = initial ?? { storage_objects: [], targets: [] };
  let changing = 0;
  let failAt: { n: number; stderr: string } | undefined;
  const f: FakeTargetcli = {
    lio,
    calls: [],
    saves: 0,
    autoDefaultPortal: true,
    ignoreChanges: false,
    missing: false,
    changes: () => f.calls.filter((c) => !(c[0] === 'saveconfig' && c.length === 2) && c[0] !== 'get'),
    failAt(n, stderr) { failAt = { n: changing + n, stderr }; },
    run: async (file, args) => {
      if (f.missing) throw new ToolMissingError(file, "install Debian's targetcli-fb");
      const argv = [...args];
      f.calls.push(argv);
      const [where, cmd, ...rest] = argv;
      if (where === 'saveconfig') {
        if (rest.length || cmd) { writeFileSync(cmd!, JSON.stringify(lio)); return ok(); }
        f.saves++;
        return ok('Configuration saved to /etc/target/saveconfig.json');
      }
      if (where === 'get') return ok(`auto_add_default_portal=${f.autoDefaultPortal}`);
      changing++;
      if (failAt && changing === failAt.n) return fail(failAt.stderr);
      if (f.ignoreChanges) return ok();
      const kv = Object.fromEntries(rest.map((a) => a.split('=') as [string, string]));
      const bs = /^\/backstores\/(fileio|block)$/.exec(where!);
      if (bs) {
        const plugin = bs[1]!;
        const i = lio.storage_objects.findIndex((s) => s.plugin === plugin && s.name === kv.name);
        if (cmd === 'create') {
          if (i >= 0) return fail(`Storage object ${plugin}/${kv.name} exists`);
          lio.storage_objects.push({ name: kv.name!, plugin, dev: kv.file_or_dev ?? kv.dev! });
          return ok(`Created ${plugin} ${kv.name}.`);
        }
        if (i < 0) return fail(`No storage object named ${kv.name}.`);
        const so = `/backstores/${plugin}/${kv.name}`;
        for (const t of lio.targets) for (const g of t.tpgs) {
          const gone = g.luns.filter((l) => l.storage_object === so).map((l) => l.index);
          g.luns = g.luns.filter((l) => l.storage_object !== so);
          for (const a of g.node_acls) a.mapped_luns = a.mapped_luns.filter((m) => !gone.includes(m.tpg_lun));
        }
        lio.storage_objects.splice(i, 1);
        return ok(`Deleted storage object ${kv.name}.`);
      }
      if (where === '/iscsi') {
        const i = lio.targets.findIndex((t) => t.wwn === kv.wwn);
        if (cmd === 'create') {
          if (i >= 0) return fail(`This Target already exists in configFS`);
          lio.targets.push({ wwn: kv.wwn!, fabric: 'iscsi', tpgs: [{ tag: 1, luns: [], node_acls: [], portals: f.autoDefaultPortal ? [{ ip_address: '0.0.0.0', port: 3260 }] : [] }] });
          return ok(`Created target ${kv.wwn}.`);
        }
        if (i < 0) return fail(`No such Target in configfs: /sys/kernel/config/target/iscsi/${kv.wwn}`);
        lio.targets.splice(i, 1);
        return ok(`Deleted Target ${kv.wwn}.`);
      }
      // `<tpg> set attribute k=v ...` and `<tpg>/acls/<wwn> set auth k=v ...`
      if (cmd === 'set') {
        const [group, ...pairs] = rest;
        const values = Object.fromEntries(pairs.map((a) => a.split('=') as [string, string]));
        const at = /^\/iscsi\/([^/]+)\/tpg1(?:\/acls\/(.+))?$/.exec(where!);
        const tg = at && lio.targets.find((x) => x.wwn === at[1])?.tpgs.find((x) => x.tag === 1);
        if (!at || !tg) return fail(`No such path ${where}`);
        if (group === 'attribute' && !at[2]) {
          tg.attributes = { ...tg.attributes, ...Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Number(v)])) };
          return ok('Parameter authentication is now \'1\'.');
        }
        const acl = tg.node_acls.find((a) => a.node_wwn === at[2]);
        if (group === 'auth' && acl) {
          for (const [k, v] of Object.entries(values)) (acl as Record<string, unknown>)[`chap_${k}`] = v;
          return ok('Parameter userid is now ...');
        }
        return fail(`No such path ${where}`);
      }
      const m = /^\/iscsi\/([^/]+)\/tpg1\/(luns|acls|portals)$/.exec(where!);
      const g = m && lio.targets.find((t) => t.wwn === m[1])?.tpgs.find((x) => x.tag === 1);
      if (!m || !g) return fail(`No such path ${where}`);
      if (m[2] === 'luns') {
        const lun = Number(kv.lun);
        if (cmd === 'create') {
          if (g.luns.some((l) => l.index === lun)) return fail(`LUN ${lun} already exists`);
          const [, , plugin, name] = kv.storage_object!.split('/');
          if (!lio.storage_objects.some((s) => s.plugin === plugin && s.name === name)) return fail(`Invalid storage object: ${kv.storage_object}`);
          g.luns.push({ index: lun, storage_object: kv.storage_object! });
          if (kv.add_mapped_luns === 'true') for (const a of g.node_acls) a.mapped_luns.push({ index: lun, tpg_lun: lun });
          return ok(`Created LUN ${lun}.`);
        }
        if (!g.luns.some((l) => l.index === lun)) return fail(`No LUN with index ${lun}`);
        g.luns = g.luns.filter((l) => l.index !== lun);
        for (const a of g.node_acls) a.mapped_luns = a.mapped_luns.filter((x) => x.tpg_lun !== lun);
        return ok(`Deleted LUN ${lun}.`);
      }
      if (m[2] === 'acls') {
        const i = g.node_acls.findIndex((a) => a.node_wwn === kv.wwn);
        if (cmd === 'create') {
          if (i >= 0) return fail(`This NodeACL already exists in configFS`);
          g.node_acls.push({ node_wwn: kv.wwn!, mapped_luns: kv.add_mapped_luns === 'true' ? g.luns.map((l) => ({ index: l.index, tpg_lun: l.index })) : [] });
          return ok(`Created Node ACL for ${kv.wwn}`);
        }
        if (i < 0) return fail(`No such NodeACL in configfs: ${kv.wwn}`);
        g.node_acls.splice(i, 1);
        return ok(`Deleted Node ACL ${kv.wwn}.`);
      }
      const port = Number(kv.ip_port);
      const i = g.portals.findIndex((p) => p.ip_address === kv.ip_address && p.port === port);
      if (cmd === 'create') {
        if (i >= 0) return fail(`This NetworkPortal already exists in configFS`);
        g.portals.push({ ip_address: kv.ip_address!, port });
        return ok(`Created network portal ${kv.ip_address}:${port}.`);
      }
      if (i < 0) return fail(`No such NetworkPortal in configfs: ${kv.ip_address}:${port}`);
      g.portals.splice(i, 1);
      return ok(`Deleted network portal ${kv.ip_address}:${port}`);
    },
  };
  return f;
}
