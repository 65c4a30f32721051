/**
 * Several bootherd heads in one lab (test/helpers only): head i in its own
 * namespace at 198.18.0.(i+1)/24 on the lab bridge, each with its own state
 * directory and cluster file, each running its own etcd member (store: {
 * kind: etcd }, no endpoints) as bootherd starts it. Clients are namespaces
 * on the same bridge; `dhcpOnlyFrom` makes one head the only DHCP server a
 * client hears (ebtables in the switch), to ask a given head.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, type LabHost } from '../../src/lab/netns.ts';
import { setPartition } from '../../src/lab/running.ts';
import { BIN, uniquePrefix } from './lab-server.ts';

export const HEAD_NAMES = ['ha', 'hb', 'hc'] as const;
export const headAddress = (i: number): string => `198.18.0.${i + 1}`;

export interface HeadProc {
  readonly index: number;
  readonly name: string;
  readonly address: string;
  readonly host: LabHost;
  /** The switch's bridge port of this head. */
  readonly port: string;
  readonly stateDir: string;
  readonly configFile: string;
  proc: ChildProcess | undefined;
  logs(): string;
  /** Starts bootherd; resolves once it logs "bootherd started" (after its store has loaded from etcd). */
  start(): Promise<void>;
  /** SIGKILL to bootherd; its etcd member dies with it (pdeathsig). */
  kill9(): Promise<void>;
  stop(): Promise<void>;
  /** The bearer token of this head's API. */
  token(): string;
}

export interface HeadsLab {
  readonly lab: Lab;
  readonly dir: string;
  readonly heads: readonly HeadProc[];
  /** An HTTP request to a head's API with curl from a client namespace: status code and body. */
  api(from: LabHost, head: HeadProc, method: string, route: string, body?: unknown): { status: number; body: string };
  /** Drops DHCP replies from every head but `head` on their way to client i (lab.clients[i]). */
  dhcpOnlyFrom(client: number, head: HeadProc): void;
  /** Cuts `head` off from the other heads' etcd (iptables in its namespace, as `lab partition-head` does), or heals it. */
  partition(head: HeadProc, heal?: boolean): void;
}

export interface HeadsLabOptions {
  readonly tag: string;
  readonly count?: number;
  /** Client namespaces: address or undefined (a DHCP client), and MAC. */
  readonly clients?: readonly { readonly mac: string; readonly cidr?: string }[];
  /**
   * The cluster file of one head after what every head's file has (`cluster:`
   * named by the tag, `head:`, `heads:`, `store: { kind: etcd }`, `state:`).
   */
  readonly config: (self: { name: string; address: string }) => string;
  /** The `store:` line of one head's file (default `store: { kind: etcd }`). */
  readonly store?: (self: { name: string; address: string }) => string;
  /** How long a head may take to start (default 60 s). */
  readonly startTimeoutMs?: number;
  /** A command that runs a head's bootherd (e.g. `faketime -f +30s`), per head; none by default. */
  readonly wrap?: (self: { name: string; address: string }) => readonly string[];
}

interface Teardownable { teardown(fn: () => unknown): void }

export async function startHeads(t: Teardownable, opts: HeadsLabOptions): Promise<HeadsLab> {
  const count = opts.count ?? 3;
  const lab = Lab.create({ prefix: uniquePrefix(opts.tag), headCidr: `${headAddress(0)}/24` });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-heads-'));
  const headsYaml = `heads:\n${Array.from({ length: count }, (_, i) => `  - { name: ${HEAD_NAMES[i]}, address: ${headAddress(i)} }`).join('\n')}\n`;
  const heads: HeadProc[] = [];
  for (let i = 0; i < count; i++) {
    const name = HEAD_NAMES[i]!;
    const host = i === 0 ? lab.head : lab.addHost(name, { mac: `52:54:00:a0:00:0${i + 1}`, cidr: `${headAddress(i)}/24` });
    const port = i === 0 ? 'ph' : `p${name}`;
    const stateDir = path.join(dir, name, 'state');
    mkdirSync(stateDir, { recursive: true });
    const configFile = path.join(dir, name, 'cluster.yaml');
    const self = { name, address: headAddress(i) };
    const common = `cluster: { name: ${opts.tag}, domain: lab.test }\nhead: { name: ${name}, address: ${self.address} }\n${headsYaml}${opts.store?.(self) ?? 'store: { kind: etcd }'}\nstate: ${stateDir}\n`;
    writeFileSync(configFile, common + opts.config(self));
    let log = '';
    const h: HeadProc = {
      index: i, name, address: headAddress(i), host, port, stateDir, configFile, proc: undefined,
      logs: () => log,
      async start() {
        const [cmd, ...args] = [...(opts.wrap?.(self) ?? []), process.execPath, BIN, 'serve', '--config', configFile];
        const proc = lab.spawn(host.ns, cmd!, args);
        h.proc = proc;
        const from = log.length;
        const timeoutMs = opts.startTimeoutMs ?? 60_000;
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`head ${name} did not log "bootherd started" within ${timeoutMs / 1000} s:\n${log.slice(-6000)}`)), timeoutMs);
          proc.stderr!.on('data', (d: Buffer) => {
            log += d.toString();
            if (log.includes('"msg":"bootherd started"', from)) { clearTimeout(timer); resolve(); }
          });
          proc.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
          proc.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`head ${name} exited with ${code ?? signal}:\n${log.slice(-6000)}`)); });
        });
        proc.removeAllListeners('exit');
      },
      async kill9() {
        const p = h.proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGKILL');
        await exited;
      },
      async stop() {
        const p = h.proc;
        if (!p || p.exitCode !== null || p.signalCode !== null) return;
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await exited;
      },
      token: () => readFileSync(path.join(stateDir, 'api-token'), 'utf8').trim(),
    };
    heads.push(h);
  }
  for (const c of opts.clients ?? []) lab.addClient(c.mac, c.cidr);
  t.teardown(async () => {
    await Promise.all(heads.map((h) => h.stop().catch(() => undefined)));
    lab.destroy();
  });
  // A new etcd cluster needs a quorum of its members up: start every head at once.
  await Promise.all(heads.map((h) => h.start()));
  return {
    lab, dir, heads,
    api(from, head, method, route, body) {
      const args = ['-sS', '--max-time', '15', '-o', '-', '-w', '\n%{http_code}', '-X', method, '-H', `authorization: Bearer ${head.token()}`];
      if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
      const r = lab.run(from.ns, 'curl', [...args, `http://${head.address}${route}`], 30_000);
      const cut = r.stdout.lastIndexOf('\n');
      return { status: Number(r.stdout.slice(cut + 1)) || 0, body: r.stdout.slice(0, Math.max(cut, 0)) };
    },
    partition(head, heal = false) {
      setPartition(head.host.ns, head.address, heads.map((h) => h.address), heal);
    },
    dhcpOnlyFrom(client, head) {
      lab.exec(lab.switchNs, 'ebtables', ['-F', 'FORWARD']);
      for (const h of heads) {
        if (h === head) continue;
        lab.exec(lab.switchNs, 'ebtables', ['-A', 'FORWARD', '-i', h.port, '-o', `pc${client}`, '-p', 'IPv4', '--ip-proto', 'udp', '--ip-sport', '67', '-j', 'DROP']);
      }
    },
  };
}

/** A counter of a head's /metrics text, summed over the series whose labels include `labels`. */
export function metricOf(text: string, name: string, labels = ''): number {
  let n = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels && !line.includes(labels)) continue;
    n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

/** The pids of the etcd members the heads run (the processes named etcd in their namespaces). */
export function etcdMemberPids(h: HeadsLab): number[] {
  return h.heads.flatMap((x) => h.lab.run(x.host.ns, 'ip', ['netns', 'pids', x.host.ns]).stdout.split('\n').filter(Boolean))
    .map(Number).filter((pid) => { try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'etcd'; } catch { return false; } });
}

/**
 * Waits until the registry of every head of `of` (all by default) counts
 * `count` heads alive (asked from `from`, a client with an address).
 */
export async function waitAllAlive(h: HeadsLab, from: LabHost, count = h.heads.length, timeoutMs = 60_000, of: readonly HeadProc[] = h.heads): Promise<void> {
  const end = Date.now() + timeoutMs;
  const alive = (head: HeadProc) => (h.api(from, head, 'GET', '/api/v1/status').body.match(/"alive":true/g) ?? []).length;
  while (!of.every((head) => head.proc?.exitCode === null && alive(head) === count)) {
    if (Date.now() > end) throw new Error(`heads ${of.map((x) => x.name).join(', ')} do not all see ${count} heads alive within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/**
 * ISC dhclient once in client namespace `ns` (-1, giving up after `timeout`
 * seconds: it has no flag for that, only the config file's `timeout`), with
 * a lease file of its own, keeping no address (-sf /bin/true).
 */
export function dhclientOnce(h: HeadsLab, ns: string, timeout: number): { code: number | null; stdout: string; stderr: string } {
  const cf = path.join(h.dir, `${ns}-${timeout}.conf`);
  writeFileSync(cf, `timeout ${timeout};\nretry 1;\n`);
  return h.lab.run(ns, 'dhclient', ['-1', '-v', '-cf', cf, '-lf', dhclientLeaseFile(h, ns), '-pf', path.join(h.dir, `${ns}.pid`), '-sf', '/bin/true', 'eth0'], (timeout + 30) * 1000);
}

export const dhclientLeaseFile = (h: HeadsLab, ns: string): string => path.join(h.dir, `${ns}.leases`);

/** The last lease in `ns`'s dhclient lease file: its address, lease time and server identifier. */
export function lastDhclientLease(h: HeadsLab, ns: string): { ip: string | undefined; seconds: number; server: string | undefined } {
  const text = readFileSync(dhclientLeaseFile(h, ns), 'utf8');
  const block = text.slice(text.lastIndexOf('lease {'));
  return {
    ip: /fixed-address ([\d.]+);/.exec(block)?.[1],
    seconds: Number(/option dhcp-lease-time (\d+);/.exec(block)?.[1]),
    server: /option dhcp-server-identifier ([\d.]+);/.exec(block)?.[1],
  };
}
