/**
 * Admin commands on the REST API: nodes, hosts (and SRV records), leases,
 * status. Tables for people, --json for scripts; an error prints the API's
 * message (it names the field) and exits 1.
 */
import { Command, InvalidArgumentError } from 'commander';
import type { BootTimeline, HostRecord, LeaseRecord, NodeRecord, SrvRecord } from '../cluster/types.ts';
import type { NodeView } from '../services/http/views.ts';
import { ApiClient, ApiError, table, type ApiOptions } from './api-client.ts';

interface Common extends ApiOptions { readonly json?: boolean }

function withApi(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'cluster file: the API address and <state>/api-token come from it')
    .option('--api <url>', 'API base URL, like http://198.18.0.1 (or BOOTHERD_API)')
    .option('--token <token>', 'API token (or BOOTHERD_TOKEN)')
    .option('--json', 'print JSON');
}

/** Runs one command body; API errors become a message on stderr and exit code 1. */
function run<A extends unknown[]>(body: (api: ApiClient, ...args: A) => Promise<void>) {
  return async (...args: A) => {
    const cmd = args[args.length - 1] as Command;
    try {
      await body(ApiClient.from(cmd.opts<Common>()), ...args);
    } catch (e) {
      if (e instanceof ApiError) {
        process.stderr.write(`error: ${e.message}\n`);
        process.exitCode = 1;
        return;
      }
      throw e;
    }
  };
}

const out = (s: string): void => { process.stdout.write(s); };
const asJson = (v: unknown): void => out(JSON.stringify(v, null, 2) + '\n');
const optsOf = (args: unknown[]) => (args[args.length - 1] as Command).opts<Common>();

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
}

function collect(v: string, prev: string[] = []): string[] { return [...prev, v]; }

export function lastStageText(boot: BootTimeline | null, now = Date.now()): string {
  const s = boot?.stages[boot.stages.length - 1];
  if (!s) return '-';
  const ago = Math.round((now - s.at) / 1000);
  return `${s.stage} (${ago < 120 ? `${ago}s` : ago < 7200 ? `${Math.round(ago / 60)}m` : `${Math.round(ago / 3600)}h`} ago)`;
}

function leaseText(n: NodeView): string {
  if (!n.lease) return '-';
  return n.lease.state === 'bound' && n.lease.expiresAt <= Date.now() ? 'expired' : n.lease.state;
}

export function registerAdminCommands(program: Command): void {
  // ---- nodes ----
  const nodes = program.command('nodes').description('list, show, add, change and remove nodes (through the REST API)');
  withApi(nodes.command('list').description('all nodes with address, lease and boot stage'))
    .action(run(async (api, ...args: unknown[]) => {
      const list = await api.get<NodeView[]>('/api/v1/nodes');
      if (optsOf(args).json) return asJson(list);
      out(table(['NAME', 'IP', 'MACS', 'PROFILE', 'LEASE', 'BOOT'], list.map((n) => [n.name, n.ip ?? '-', n.macs.join(','), n.profile, leaseText(n), lastStageText(n.boot)])));
    }));
  withApi(nodes.command('show').description('one node and its last boot, stage by stage').argument('<name>'))
    .action(run(async (api, name: string, ...args: unknown[]) => {
      const n = await api.get<NodeView>(`/api/v1/nodes/${encodeURIComponent(name)}`);
      if (optsOf(args).json) return asJson(n);
      const facts = [
        `name:     ${n.name}`, `ip:       ${n.ip ?? '-'}${n.ipFrom && n.ipFrom !== 'reservation' ? ` (learned: ${n.ipFrom})` : ''}`, `macs:     ${n.macs.join(', ')}`, `profile:  ${n.profile}`,
        `source:   ${n.source === 'config' ? 'cluster file' : 'API'}`,
        `lease:    ${n.lease ? `${leaseText(n)} until ${new Date(n.lease.expiresAt).toISOString()}` : '-'}`,
      ];
      out(facts.join('\n') + '\n');
      if (!n.boot) return out('boot:     never booted since the state directory was created\n');
      out(`boot:     started ${new Date(n.boot.startedAt).toISOString()}\n`);
      out(table(['  STAGE', 'AT', '+SECONDS', 'DETAIL'], n.boot.stages.map((s) => [`  ${s.stage}`, new Date(s.at).toISOString(), ((s.at - n.boot!.startedAt) / 1000).toFixed(1), s.detail ?? ''])));
    }));
  withApi(nodes.command('add').description('add a node; DHCP, DNS and its iPXE script know it at once').argument('<name>')
    .requiredOption('--mac <mac>', 'MAC address (repeat for several NICs)', collect)
    .option('--ip <address>', 'reserved IPv4 address (leave out on a mode: proxy subnet, where the site\'s DHCP server gives it)')
    .option('--profile <profile>', 'boot profile', 'default'))
    .action(run(async (api, name: string, ...args: unknown[]) => {
      const o = optsOf(args) as Common & { mac: string[]; ip?: string; profile: string };
      const n = await api.request<NodeView>('POST', '/api/v1/nodes', { name, macs: o.mac, ...(o.ip ? { ip: o.ip } : {}), profile: o.profile });
      if (o.json) return asJson(n);
      out(`added ${n.name}: ${n.ip ?? '(address from the site\'s DHCP server)'} ${n.macs.join(',')} profile ${n.profile}\n`);
    }));
  withApi(nodes.command('set').description('change a node\'s MACs, address or profile').argument('<name>')
    .option('--mac <mac>', 'MAC address (repeat for several; replaces the list)', collect)
    .option('--ip <address>', 'reserved IPv4 address')
    .option('--profile <profile>', 'boot profile'))
    .action(run(async (api, name: string, ...args: unknown[]) => {
      const o = optsOf(args) as Common & { mac?: string[]; ip?: string; profile?: string };
      const change = { ...(o.mac ? { macs: o.mac } : {}), ...(o.ip ? { ip: o.ip } : {}), ...(o.profile ? { profile: o.profile } : {}) };
      const n = await api.request<NodeView>('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}`, change);
      if (o.json) return asJson(n);
      out(`changed ${n.name}: ${n.ip ?? '-'} ${n.macs.join(',')} profile ${n.profile}\n`);
    }));
  withApi(nodes.command('rm').description('remove a node').argument('<name>'))
    .action(run(async (api, name: string, ...args: unknown[]) => {
      const r = await api.request<{ removed: NodeRecord }>('DELETE', `/api/v1/nodes/${encodeURIComponent(name)}`);
      if (optsOf(args).json) return asJson(r);
      out(`removed ${r.removed.name}\n`);
    }));

  // ---- hosts and SRV records ----
  const hosts = program.command('hosts').description('host mappings (name to address) and SRV records served by DNS');
  withApi(hosts.command('list').description('host mappings and SRV records'))
    .action(run(async (api, ...args: unknown[]) => {
      const [h, s] = await Promise.all([api.get<HostRecord[]>('/api/v1/hosts'), api.get<SrvRecord[]>('/api/v1/srv')]);
      if (optsOf(args).json) return asJson({ hosts: h, srv: s });
      out(table(['NAME', 'IP', 'SOURCE'], h.map((x) => [x.name, x.ip, x.source])));
      if (s.length) out('\n' + table(['SRV NAME', 'TARGET', 'PORT', 'PRIORITY', 'WEIGHT', 'SOURCE'], s.map((x) => [x.name, x.target, String(x.port), String(x.priority), String(x.weight), x.source])));
    }));
  withApi(hosts.command('add').description('add a mapping: hosts add <name> <ip>; or an SRV record: hosts add --srv <name> <target> <port>')
    .argument('<name>').argument('<ip-or-target>').argument('[port]', 'SRV port', port)
    .option('--srv', 'add an SRV record instead of a host mapping')
    .option('--priority <n>', 'SRV priority', port, 0)
    .option('--weight <n>', 'SRV weight', port, 0))
    .action(run(async (api, name: string, second: string, p: number | undefined, ...args: unknown[]) => {
      const o = optsOf(args) as Common & { srv?: boolean; priority: number; weight: number };
      if (o.srv) {
        if (p === undefined) throw new ApiError(0, 'an SRV record needs a port: hosts add --srv <name> <target> <port>');
        const r = await api.request<SrvRecord>('POST', '/api/v1/srv', { name, target: second, port: p, priority: o.priority, weight: o.weight });
        return o.json ? asJson(r) : out(`added SRV ${r.name} -> ${r.target}:${r.port}\n`);
      }
      const r = await api.request<HostRecord>('POST', '/api/v1/hosts', { name, ip: second });
      return o.json ? asJson(r) : out(`added ${r.name} -> ${r.ip}\n`);
    }));
  withApi(hosts.command('rm').description('remove a mapping: hosts rm <name>; or an SRV record: hosts rm --srv <name> <target> <port>')
    .argument('<name>').argument('[target]').argument('[port]', 'SRV port', port)
    .option('--srv', 'remove an SRV record'))
    .action(run(async (api, name: string, target: string | undefined, p: number | undefined, ...args: unknown[]) => {
      const o = optsOf(args) as Common & { srv?: boolean };
      if (o.srv) {
        if (!target || p === undefined) throw new ApiError(0, 'say which SRV record: hosts rm --srv <name> <target> <port>');
        const r = await api.request<unknown>('DELETE', `/api/v1/srv/${encodeURIComponent(name)}/${encodeURIComponent(target)}/${p}`);
        return o.json ? asJson(r) : out(`removed SRV ${name} -> ${target}:${p}\n`);
      }
      const r = await api.request<unknown>('DELETE', `/api/v1/hosts/${encodeURIComponent(name)}`);
      return o.json ? asJson(r) : out(`removed ${name}\n`);
    }));

  // ---- leases ----
  const leases = program.command('leases').description('DHCP leases');
  withApi(leases.command('list').description('all lease records'))
    .action(run(async (api, ...args: unknown[]) => {
      const list = await api.get<LeaseRecord[]>('/api/v1/leases');
      if (optsOf(args).json) return asJson(list);
      out(table(['IP', 'MAC', 'STATE', 'NODE', 'HOSTNAME', 'EXPIRES'], list.map((l) => [l.ip, l.mac, l.state, l.node ?? '-', l.hostname ?? '-', new Date(l.expiresAt).toISOString()])));
    }));
  withApi(leases.command('release').description('release a lease: its address goes back to the pool').argument('<ip>'))
    .action(run(async (api, ip: string, ...args: unknown[]) => {
      const l = await api.request<LeaseRecord>('POST', `/api/v1/leases/${encodeURIComponent(ip)}/release`);
      if (optsOf(args).json) return asJson(l);
      out(`released ${l.ip} (${l.mac})\n`);
    }));

  // ---- status ----
  withApi(program.command('status').description('server status: counts and each service'))
    .action(run(async (api, ...args: unknown[]) => {
      const s = await api.get<{ name: string; domain: string; head: { name: string; address: string }; uptimeSeconds: number; counts: Record<string, number>; services: Record<string, Record<string, unknown>> }>('/api/v1/status');
      if (optsOf(args).json) return asJson(s);
      out([
        `cluster:  ${s.name} (${s.domain}), head ${s.head.name} ${s.head.address}, up ${s.uptimeSeconds}s`,
        `records:  ${Object.entries(s.counts).map(([k, v]) => `${v} ${k}`).join(', ')}`,
        '',
      ].join('\n'));
      out(table(['SERVICE', 'STATUS'], Object.entries(s.services).map(([name, st]) => [name, Object.entries(st).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(' ')])));
    }));
}
