/**
 * Lab mode: `bootherd lab up` builds a lab (namespaces, bridge, bootherd
 * serving the lab cluster file in each head namespace) and leaves it running
 * after the command exits; its description is kept in
 * /run/bootherd-lab/<name>/lab.json so that `lab status`, `lab boot`,
 * `lab kill-head`, `lab partition-head` and `lab down` find it. /run is
 * cleared at reboot, as namespaces are.
 * `down` removes everything `up` made: the processes in the lab's namespaces
 * (bootherd, its etcd members, VMs, the tgtd of `up --iscsi`), the
 * namespaces, and the lab's directory.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ETCD_CLIENT_PORT, ETCD_PEER_PORT } from '../store/etcd-member.ts';
import { labClientMac, labClusterFile, labHead, labNode, LAB_MAX_HEADS, LAB_SITE_ADDRESS } from './cluster.ts';
import { labImage } from './image.ts';
import { Lab, namespaceExists, type LabDescription, type LabHost } from './netns.ts';
import { labSiteDhcpRunning, siteDhcpArgs, startLabSiteDhcp, type LabSiteDhcp } from './site-dhcp.ts';
import { labTgtdRunning, startLabTgtd, stopLabTgtd, type LabTgtd } from './tgtd.ts';

export const LAB_RUN_DIR = '/run/bootherd-lab';
export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/bootherd.mjs');

/**
 * The command a person types to run this bootherd, for the lines the lab
 * prints: `bootherd` where that name on the PATH is this program (the
 * package's /usr/bin/bootherd), else bin/bootherd.mjs by its absolute path,
 * since a clone puts nothing on the PATH and `ip netns exec` runs from any directory.
 */
export function cliCommand(): string {
  const self = realpathSync(BIN);
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    try { if (realpathSync(path.join(dir, 'bootherd')) === self) return 'bootherd'; } catch { /* not in this directory */ }
  }
  return /^[\w./+-]+$/.test(BIN) ? BIN : `'${BIN.replaceAll("'", "'\\''")}'`;
}

/** One head of a lab: its namespace, its own cluster file and state directory, its bootherd. */
export interface LabHeadState {
  /** 1-based, as `lab kill-head N` names it. */
  readonly index: number;
  readonly name: string;
  readonly address: string;
  readonly ns: string;
  readonly configFile: string;
  /** Its state directory; with several heads, its etcd member's data is in <stateDir>/etcd. */
  readonly stateDir: string;
  readonly serverLog: string;
  readonly serverPid: number;
  /** `lab partition-head N`: its etcd traffic to and from the other heads is dropped. */
  readonly partitioned?: boolean;
}

/** The persisted description of a running lab. */
export interface LabState {
  readonly name: string;
  /** /run/bootherd-lab/<name>: cluster files, state directories, logs, VM consoles. */
  readonly dir: string;
  readonly imageDir: string;
  readonly nodes: number;
  readonly lab: LabDescription;
  /** Head 1 first; a lab of one head has one. */
  readonly heads: readonly LabHeadState[];
  readonly createdAt: string;
  /** The lab's tgtd (`up --iscsi`): the nodes' roots are exported from it. */
  readonly tgtd?: LabTgtd;
  /** `up --proxy`: the site's DHCP server, which gives the addresses; bootherd's subnet is mode: proxy. */
  readonly site?: LabSiteDhcp;
}

export interface LabUpOptions {
  /** Letters, digits and hyphens; the namespaces are bootherd-<name>-{sw,head,c0,...}. */
  readonly name: string;
  readonly nodes: number;
  /** Heads sharing the cluster through etcd (1 to LAB_MAX_HEADS; default 1, the embedded store). */
  readonly heads?: number;
  /** Client namespaces on the bridge (not nodes: pool addresses), for trying dhclient and friends. */
  readonly clients: number;
  /** info (default), debug or trace: `lab up` waits for the server's info-level "bootherd started". */
  readonly logLevel?: 'info' | 'debug' | 'trace';
  /** Every node's root over iSCSI: a tgtd in the head namespace, bootherd's tgt backend exporting copies of the golden disk. */
  readonly iscsi?: boolean;
  /** A site DHCP server (dnsmasq) gives the addresses and bootherd runs in proxy mode beside it. */
  readonly proxy?: boolean;
  /** Progress lines for people. */
  readonly say?: (line: string) => void;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,30}$/i;

export function labDirOf(name: string): string {
  if (!NAME.test(name)) throw new Error(`lab name ${JSON.stringify(name)}: expected letters, digits and hyphens (up to 31)`);
  return path.join(LAB_RUN_DIR, name);
}

function stateFileOf(name: string): string {
  return path.join(labDirOf(name), 'lab.json');
}

export function readLab(name: string): LabState | undefined {
  try {
    return JSON.parse(readFileSync(stateFileOf(name), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

/** The lab, or an error that says how to make one. */
export function requireLab(name: string): LabState {
  const state = readLab(name);
  if (!state) throw new Error(`no lab named ${name} is up; start it with: ${cliCommand()} lab up${name === 'lab' ? '' : ` --name ${name}`}`);
  return state;
}

function writeLab(state: LabState): void {
  writeFileSync(stateFileOf(state.name), JSON.stringify(state, null, 2) + '\n');
}

/** Whether a head's bootherd is still this lab's bootherd (a PID can be reused after a crash). */
export function serverRunning(head: LabHeadState): boolean {
  try {
    return readFileSync(`/proc/${head.serverPid}/cmdline`, 'utf8').includes(head.configFile);
  } catch {
    return false;
  }
}

/** Head N (1-based) of the lab, or an error naming the heads it has. */
export function headOf(state: LabState, n: number): LabHeadState {
  const head = state.heads[n - 1];
  if (!head) throw new Error(`lab ${state.name} has head${state.heads.length === 1 ? ' 1' : `s 1-${state.heads.length}`}, not ${n}`);
  return head;
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('lab mode creates network namespaces and taps: run it as root');
}

export async function labUp(opts: LabUpOptions): Promise<LabState> {
  requireRoot();
  const say = opts.say ?? (() => undefined);
  const count = opts.heads ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > LAB_MAX_HEADS) throw new Error(`--heads: a lab runs 1 to ${LAB_MAX_HEADS} heads, not ${count}`);
  if (count > 1 && opts.iscsi) throw new Error('--iscsi exports from one head; use it without --heads');
  if (count > 1 && opts.proxy) throw new Error('--proxy runs one head beside the site DHCP server; use it without --heads');
  const dir = labDirOf(opts.name);
  const existing = readLab(opts.name);
  if (existing) {
    if (existing.heads.length === count && existing.heads.every(serverRunning) && existing.lab.namespaces.every(namespaceExists) && (!existing.tgtd || labTgtdRunning(existing.tgtd))
      && !existing.site === !opts.proxy && (!existing.site || labSiteDhcpRunning(existing.site))) {
      say(`lab ${opts.name} is already up`);
      return existing;
    }
    say(`lab ${opts.name} was left half-up${existing.heads.length !== count ? ` (with ${existing.heads.length} head(s))` : ''}: removing it first`);
    await labDown(opts.name);
  }
  const image = labImage();
  const first = labHead(0, count);
  const lab = Lab.create({ prefix: `bootherd-${opts.name}`, headCidr: `${first.address}/24`, clients: opts.clients, clientMac: labClientMac });
  let tgtd: LabTgtd | undefined;
  const started: number[] = [];
  try {
    mkdirSync(dir, { recursive: true });
    const hosts: LabHost[] = [lab.head];
    for (let i = 1; i < count; i++) {
      const h = labHead(i, count);
      hosts.push(lab.addHost(h.name, { mac: `52:54:00:a0:00:${String(i + 1).padStart(2, '0')}`, cidr: `${h.address}/24` }));
    }
    // Before bootherd: it probes its backend once, at start, and stays off without it.
    if (opts.iscsi) tgtd = await startLabTgtd(lab.head.ns, `${first.address}:3260`, path.join(dir, 'tgtd.log'));
    let site: LabSiteDhcp | undefined;
    if (opts.proxy) {
      const host = lab.addHost('site', { mac: '52:54:00:a0:00:fe', cidr: `${LAB_SITE_ADDRESS}/24` });
      const log = path.join(dir, 'site-dhcp.log');
      const leases = path.join(dir, 'site-dhcp.leases');
      const nodes = Array.from({ length: opts.nodes }, (_, i) => labNode(i));
      site = await startLabSiteDhcp(host.ns, LAB_SITE_ADDRESS, siteDhcpArgs({ head: first.address, nodes, log, leases }), log, leases);
      say(`site DHCP server (dnsmasq) at ${LAB_SITE_ADDRESS} gives the addresses; bootherd is its proxy`);
    }
    const heads = hosts.map((host, i) => {
      const h = labHead(i, count);
      // One head keeps the lab's directory as it always had; several get a directory each.
      const headDir = count === 1 ? dir : path.join(dir, h.name);
      mkdirSync(headDir, { recursive: true });
      const stateDir = path.join(headDir, 'state');
      const configFile = path.join(headDir, 'cluster.yaml');
      writeFileSync(configFile, labClusterFile({
        stateDir, filesDir: image.dir, nodes: opts.nodes, logLevel: opts.logLevel,
        ...(count > 1 ? { heads: { self: i, count } } : {}),
        ...(tgtd ? { iscsi: { tgtControlPort: tgtd.controlPort } } : {}),
        ...(site ? { proxy: true } : {}),
      }));
      return { index: i + 1, name: h.name, address: h.address, ns: host.ns, configFile, stateDir, serverLog: path.join(headDir, 'bootherd.log') };
    });
    if (count > 1) say(`starting ${count} heads together (their etcd members serve once a quorum runs)`);
    // A new etcd cluster needs a quorum of its members up: every head starts at once.
    const pids = await Promise.all(heads.map((h) => startServer(h.ns, h.configFile, h.serverLog, (pid) => started.push(pid))));
    const state: LabState = {
      name: opts.name, dir, imageDir: image.dir, nodes: opts.nodes, lab: lab.describe(),
      heads: heads.map((h, i) => ({ ...h, serverPid: pids[i]! })), createdAt: new Date().toISOString(), ...(tgtd ? { tgtd } : {}), ...(site ? { site } : {}),
    };
    writeLab(state);
    return state;
  } catch (e) {
    for (const pid of started) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    if (tgtd) stopLabTgtd(tgtd);
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/**
 * Starts bootherd in a head namespace, detached so it outlives `lab up`, and
 * waits until it serves (after its store has loaded: from etcd, a quorum).
 */
async function startServer(ns: string, configFile: string, logFile: string, onPid: (pid: number) => void = () => undefined): Promise<number> {
  const from = existsSync(logFile) ? readFileSync(logFile, 'utf8').length : 0;
  const fd = openSync(logFile, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, 'serve', '--config', configFile], {
    detached: true, stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start bootherd');
  onPid(pid);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const log = readFileSync(logFile, 'utf8').slice(from);
    if (log.includes('"msg":"bootherd started"')) return pid;
    if (child.exitCode !== null || !existsSync(`/proc/${pid}`)) throw new Error(`bootherd exited while starting; its log (${logFile}):\n${log}`);
    if (Date.now() > deadline) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      throw new Error(`bootherd did not start within 60 s; its log (${logFile}):\n${log.slice(-6000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Removes the lab: its processes, namespaces and directory. Returns what it removed. */
export async function labDown(name: string): Promise<string[]> {
  requireRoot();
  const state = readLab(name);
  const removed: string[] = [];
  if (state) {
    const running = state.heads.filter(serverRunning);
    for (const h of running) process.kill(h.serverPid, 'SIGTERM');
    for (let i = 0; i < 100 && running.some(serverRunning); i++) await new Promise((r) => setTimeout(r, 100));
    for (const h of running) removed.push(`bootherd ${h.name} (pid ${h.serverPid})`);
    if (state.tgtd) {
      if (labTgtdRunning(state.tgtd)) removed.push(`tgtd (pid ${state.tgtd.pid})`);
      stopLabTgtd(state.tgtd);
    }
    const present = state.lab.namespaces.filter(namespaceExists);
    // Kills whatever still runs in the namespaces (a VM, a stuck server), then deletes them.
    Lab.adopt(state.lab).destroy();
    if (present.length) removed.push(`namespaces ${present.join(', ')}`);
  }
  const dir = labDirOf(name);
  if (existsSync(dir)) {
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

export interface LabHealth {
  readonly state: LabState;
  /** Head name -> whether its bootherd runs. */
  readonly serversRunning: Readonly<Record<string, boolean>>;
  readonly missingNamespaces: readonly string[];
  /** Whether the lab's tgtd runs; undefined for a lab without iSCSI. */
  readonly tgtdRunning: boolean | undefined;
}

export function labHealth(state: LabState): LabHealth {
  return {
    state, serversRunning: Object.fromEntries(state.heads.map((h) => [h.name, serverRunning(h)])), missingNamespaces: state.lab.namespaces.filter((ns) => !namespaceExists(ns)),
    tgtdRunning: state.tgtd ? labTgtdRunning(state.tgtd) : undefined,
  };
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a bootherd admin command (nodes, leases, status...) in a head's
 * namespace, where its API is: the one way the lab talks to its heads. The
 * head is `head`, or else the first whose bootherd runs (any head answers for
 * the whole cluster). Asynchronous, so that VM consoles keep being read meanwhile.
 */
export function headCli(state: LabState, args: readonly string[], timeoutMs = 60_000, head?: LabHeadState): Promise<CliResult> {
  const h = head ?? state.heads.find(serverRunning) ?? state.heads[0]!;
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', h.ns, process.execPath, BIN, ...args, '--config', h.configFile],
      { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

/** An admin command's --json output, or an error with its message. */
export async function headJson<T>(state: LabState, args: readonly string[], head?: LabHeadState): Promise<T> {
  const h = head ?? state.heads.find(serverRunning) ?? state.heads[0]!;
  const r = await headCli(state, [...args, '--json'], 60_000, h);
  if (r.code !== 0) throw new Error(`bootherd ${args.join(' ')} (in ${h.ns}) failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  return JSON.parse(r.stdout) as T;
}

/**
 * `lab kill-head N`: SIGKILL to head N's bootherd and to its etcd member (which
 * would die with it anyway, by its parent-death signal), as a power loss does.
 * With `restart`, starts it again and waits until it serves: its member
 * rejoins from its data directory and its store catches up from etcd.
 */
export async function killHead(name: string, n: number, opts: { restart?: boolean } = {}): Promise<{ killed: string[]; head: LabHeadState }> {
  requireRoot();
  const state = requireLab(name);
  let head = headOf(state, n);
  const killed: string[] = [];
  if (serverRunning(head)) {
    process.kill(head.serverPid, 'SIGKILL');
    killed.push(`bootherd ${head.name} (pid ${head.serverPid})`);
  }
  for (const pid of etcdPidsOf(head)) {
    try { process.kill(pid, 'SIGKILL'); killed.push(`etcd ${head.name} (pid ${pid})`); } catch { /* gone */ }
  }
  // Until both are gone the member's ports are taken, and a restart would fail.
  for (let i = 0; i < 100 && (serverRunning(head) || etcdPidsOf(head).length); i++) await new Promise((r) => setTimeout(r, 100));
  if (opts.restart) {
    const serverPid = await startServer(head.ns, head.configFile, head.serverLog);
    head = { ...head, serverPid };
    writeLab({ ...state, heads: state.heads.map((h) => (h.index === n ? head : h)) });
  }
  return { killed, head };
}

/** The etcd member processes of a head: in its namespace, with its data directory. */
function etcdPidsOf(head: LabHeadState): number[] {
  let pids: string[];
  try { pids = execFileSync('ip', ['netns', 'pids', head.ns], { encoding: 'utf8' }).split('\n').filter(Boolean); } catch { return []; }
  const dataDir = path.join(head.stateDir, 'etcd');
  return pids.map(Number).filter((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return path.basename(argv[0] ?? '') === 'etcd' && argv.includes(dataDir);
    } catch { return false; }
  });
}

/** The iptables chain `lab partition-head` fills in a head's namespace. */
const PARTITION_CHAIN = 'BOOTHERD-PARTITION';

/**
 * The iptables commands (arguments) that cut the head at `self` off from the
 * other heads' etcd: in its namespace, TCP to or from their addresses on
 * etcd's client and peer ports is dropped, both ways. DHCP, DNS, HTTP and
 * NTP still pass, so the head keeps answering from its cache; its member
 * loses the quorum, so its writes fail.
 */
export function partitionRules(self: string, heads: readonly string[]): string[][] {
  const ports = `${ETCD_CLIENT_PORT},${ETCD_PEER_PORT}`;
  const rules: string[][] = [['-N', PARTITION_CHAIN]];
  for (const other of heads) {
    if (other === self) continue;
    for (const dir of ['-s', '-d']) rules.push(['-A', PARTITION_CHAIN, dir, other, '-p', 'tcp', '-m', 'multiport', '--ports', ports, '-j', 'DROP']);
  }
  rules.push(['-I', 'INPUT', '-j', PARTITION_CHAIN], ['-I', 'OUTPUT', '-j', PARTITION_CHAIN]);
  return rules;
}

/**
 * Cuts the head at `self` (in namespace `ns`) off from the other heads'
 * etcd, or with `heal` undoes it; idempotent both ways. Returns the rules
 * applied.
 */
export function setPartition(ns: string, self: string, heads: readonly string[], heal: boolean): string[][] {
  const iptables = (args: string[], mayFail = false): void => {
    try {
      execFileSync('ip', ['netns', 'exec', ns, 'iptables', '-w', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      if (!mayFail) throw new Error(`iptables ${args.join(' ')} in ${ns} failed: ${(e as { stderr?: string }).stderr?.trim() ?? (e as Error).message}`);
    }
  };
  // Whatever an earlier partition left goes first.
  iptables(['-D', 'INPUT', '-j', PARTITION_CHAIN], true);
  iptables(['-D', 'OUTPUT', '-j', PARTITION_CHAIN], true);
  iptables(['-F', PARTITION_CHAIN], true);
  iptables(['-X', PARTITION_CHAIN], true);
  const rules = heal ? [] : partitionRules(self, heads);
  for (const r of rules) iptables(r);
  return rules;
}

/** `lab partition-head N [--heal]`: cuts head N off from the other heads' etcd, or undoes it. */
export function partitionHead(name: string, n: number, opts: { heal?: boolean } = {}): { head: LabHeadState; rules: string[][] } {
  requireRoot();
  const state = requireLab(name);
  const head = headOf(state, n);
  if (state.heads.length < 2) throw new Error(`lab ${name} has one head: there is nothing to partition it from (lab up --heads 3)`);
  const rules = setPartition(head.ns, head.address, state.heads.map((h) => h.address), opts.heal === true);
  const updated = { ...head, partitioned: !opts.heal };
  writeLab({ ...state, heads: state.heads.map((h) => (h.index === n ? updated : h)) });
  return { head: updated, rules };
}

/** Lines for people: what the lab is and how to use it. */
export function describeLab(state: LabState): string[] {
  const lab = state.name === 'lab' ? '' : ` --name ${state.name}`;
  const first = state.heads[0]!;
  const several = state.heads.length > 1;
  const cli = cliCommand();
  return [
    `lab ${state.name}: ${state.heads.length} head(s) serving ${state.nodes} node(s); bridge br0 in ${state.lab.switchNs}`,
    ...state.heads.map((h) => `  head ${h.index}       ${h.name} ${h.address} in ${h.ns}: bootherd ${h.serverPid}${serverRunning(h) ? '' : ' (not running)'}${h.partitioned ? ', partitioned from the other heads\' etcd' : ''}; ${h.configFile}, log ${h.serverLog}`),
    ...(several ? ['  store        etcd: every head runs its own member (peers on :52380, clients on :2379), data in its state/etcd'] : []),
    `  boot files   ${state.imageDir}`,
    ...(state.tgtd ? [`  iSCSI        every node's root: tgtd ${state.tgtd.pid} on ${state.tgtd.portal} (control port ${state.tgtd.controlPort}, log ${state.tgtd.log}), bootherd's tgt backend`] : []),
    ...(state.lab.clients.length ? [`  clients      ${state.lab.clients.map((c) => `${c.ns} (${c.mac})`).join(', ')}`] : []),
    'try:',
    `  ${cli} lab boot${lab} --firmware bios        # a VM PXE-boots n001 and prints its boot timeline`,
    `  ip netns exec ${first.ns} ${cli} nodes list --config ${first.configFile}`,
    ...(several ? [
      `  ${cli} lab kill-head${lab} 2      # SIGKILL head 2's bootherd and etcd member; add --restart to start it again`,
      `  ${cli} lab partition-head${lab} 3    # cut head 3 off from the other heads' etcd; add --heal to undo it`,
    ] : []),
    ...(state.lab.clients.length ? [`  ip netns exec ${state.lab.clients[0]!.ns} dhclient -v -1 -lf /tmp/${state.name}.leases -sf /bin/true eth0`] : []),
    `  ${cli} lab down${lab}`,
  ];
}
