/**
 * Lab mode: `bootherd lab up` builds a lab (namespaces, bridge, bootherd
 * serving the lab cluster file in the head namespace) and leaves it running
 * after the command exits; its description is kept in
 * /run/bootherd-lab/<name>/lab.json so that `lab status`, `lab boot` and
 * `lab down` find it. /run is cleared at reboot, as namespaces are.
 * `down` removes everything `up` made: the processes in the lab's namespaces
 * (bootherd, VMs, the tgtd of `up --iscsi`), the namespaces, and the lab's
 * directory.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { labClientMac, labClusterFile, LAB_HEAD_ADDRESS } from './cluster.ts';
import { labImage } from './image.ts';
import { Lab, namespaceExists, type LabDescription } from './netns.ts';
import { labTgtdRunning, startLabTgtd, stopLabTgtd, type LabTgtd } from './tgtd.ts';

export const LAB_RUN_DIR = '/run/bootherd-lab';
export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/bootherd.mjs');

/** The persisted description of a running lab. */
export interface LabState {
  readonly name: string;
  /** /run/bootherd-lab/<name>: cluster file, state directory, logs, VM consoles. */
  readonly dir: string;
  readonly configFile: string;
  readonly stateDir: string;
  readonly imageDir: string;
  readonly nodes: number;
  readonly lab: LabDescription;
  readonly serverPid: number;
  readonly serverLog: string;
  readonly createdAt: string;
  /** The lab's tgtd (`up --iscsi`): the nodes' roots are exported from it. */
  readonly tgtd?: LabTgtd;
}

export interface LabUpOptions {
  /** Letters, digits and hyphens; the namespaces are bootherd-<name>-{sw,head,c0,...}. */
  readonly name: string;
  readonly nodes: number;
  /** Client namespaces on the bridge (not nodes: pool addresses), for trying dhclient and friends. */
  readonly clients: number;
  /** info (default), debug or trace: `lab up` waits for the server's info-level "bootherd started". */
  readonly logLevel?: 'info' | 'debug' | 'trace';
  /** Every node's root over iSCSI: a tgtd in the head namespace, bootherd's tgt backend exporting copies of the golden disk. */
  readonly iscsi?: boolean;
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
  if (!state) throw new Error(`no lab named ${name} is up; start it with: bootherd lab up${name === 'lab' ? '' : ` --name ${name}`}`);
  return state;
}

/** Whether the lab's bootherd is still this lab's bootherd (a PID can be reused after a crash). */
export function serverRunning(state: LabState): boolean {
  try {
    return readFileSync(`/proc/${state.serverPid}/cmdline`, 'utf8').includes(state.configFile);
  } catch {
    return false;
  }
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('lab mode creates network namespaces and taps: run it as root');
}

export async function labUp(opts: LabUpOptions): Promise<LabState> {
  requireRoot();
  const say = opts.say ?? (() => undefined);
  const dir = labDirOf(opts.name);
  const existing = readLab(opts.name);
  if (existing) {
    if (serverRunning(existing) && existing.lab.namespaces.every(namespaceExists) && (!existing.tgtd || labTgtdRunning(existing.tgtd))) {
      say(`lab ${opts.name} is already up`);
      return existing;
    }
    say(`lab ${opts.name} was left half-up: removing it first`);
    await labDown(opts.name);
  }
  const image = labImage();
  const lab = Lab.create({ prefix: `bootherd-${opts.name}`, clients: opts.clients, clientMac: labClientMac });
  let tgtd: LabTgtd | undefined;
  try {
    mkdirSync(dir, { recursive: true });
    const stateDir = path.join(dir, 'state');
    const configFile = path.join(dir, 'cluster.yaml');
    // Before bootherd: it probes its backend once, at start, and stays off without it.
    if (opts.iscsi) tgtd = await startLabTgtd(lab.head.ns, `${LAB_HEAD_ADDRESS}:3260`, path.join(dir, 'tgtd.log'));
    writeFileSync(configFile, labClusterFile({
      stateDir, filesDir: image.dir, nodes: opts.nodes, logLevel: opts.logLevel,
      ...(tgtd ? { iscsi: { tgtControlPort: tgtd.controlPort } } : {}),
    }));
    const serverLog = path.join(dir, 'bootherd.log');
    const pid = await startServer(lab, configFile, serverLog);
    const state: LabState = {
      name: opts.name, dir, configFile, stateDir, imageDir: image.dir, nodes: opts.nodes,
      lab: lab.describe(), serverPid: pid, serverLog, createdAt: new Date().toISOString(), ...(tgtd ? { tgtd } : {}),
    };
    writeFileSync(stateFileOf(opts.name), JSON.stringify(state, null, 2) + '\n');
    return state;
  } catch (e) {
    if (tgtd) stopLabTgtd(tgtd);
    lab.destroy();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Starts bootherd in the head namespace, detached so it outlives `lab up`, and waits until it serves. */
async function startServer(lab: Lab, configFile: string, logFile: string): Promise<number> {
  const fd = openSync(logFile, 'a');
  const child = spawn('ip', ['netns', 'exec', lab.head.ns, process.execPath, BIN, 'serve', '--config', configFile], {
    detached: true, stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start bootherd');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const log = readFileSync(logFile, 'utf8');
    if (log.includes('"msg":"bootherd started"')) return pid;
    if (child.exitCode !== null || !existsSync(`/proc/${pid}`)) throw new Error(`bootherd exited while starting; its log (${logFile}):\n${log}`);
    if (Date.now() > deadline) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      throw new Error(`bootherd did not start within 30 s; its log (${logFile}):\n${log}`);
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
    if (serverRunning(state)) {
      process.kill(state.serverPid, 'SIGTERM');
      for (let i = 0; i < 100 && serverRunning(state); i++) await new Promise((r) => setTimeout(r, 100));
      removed.push(`bootherd (pid ${state.serverPid})`);
    }
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
  readonly serverRunning: boolean;
  readonly missingNamespaces: readonly string[];
  /** Whether the lab's tgtd runs; undefined for a lab without iSCSI. */
  readonly tgtdRunning: boolean | undefined;
}

export function labHealth(state: LabState): LabHealth {
  return {
    state, serverRunning: serverRunning(state), missingNamespaces: state.lab.namespaces.filter((ns) => !namespaceExists(ns)),
    tgtdRunning: state.tgtd ? labTgtdRunning(state.tgtd) : undefined,
  };
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a bootherd admin command (nodes, leases, status...) in the head
 * namespace, where the lab's API is: the one way the lab talks to its head.
 * Asynchronous, so that VM consoles keep being read meanwhile.
 */
export function headCli(state: LabState, args: readonly string[], timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', state.lab.head.ns, process.execPath, BIN, ...args, '--config', state.configFile],
      { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

/** An admin command's --json output, or an error with its message. */
export async function headJson<T>(state: LabState, args: readonly string[]): Promise<T> {
  const r = await headCli(state, [...args, '--json']);
  if (r.code !== 0) throw new Error(`bootherd ${args.join(' ')} (in ${state.lab.head.ns}) failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  return JSON.parse(r.stdout) as T;
}

/** Lines for people: what the lab is and how to use it. */
export function describeLab(state: LabState): string[] {
  const ns = state.lab.head.ns;
  return [
    `lab ${state.name}: bootherd ${state.serverPid} serving ${state.nodes} node(s) from namespace ${ns} (${LAB_HEAD_ADDRESS}); bridge br0 in ${state.lab.switchNs}`,
    `  cluster file ${state.configFile}`,
    `  boot files   ${state.imageDir}`,
    `  server log   ${state.serverLog}`,
    ...(state.tgtd ? [`  iSCSI        every node's root: tgtd ${state.tgtd.pid} on ${state.tgtd.portal} (control port ${state.tgtd.controlPort}, log ${state.tgtd.log}), bootherd's tgt backend`] : []),
    ...(state.lab.clients.length ? [`  clients      ${state.lab.clients.map((c) => `${c.ns} (${c.mac})`).join(', ')}`] : []),
    'try:',
    `  bootherd lab boot${state.name === 'lab' ? '' : ` --name ${state.name}`} --firmware bios        # a VM PXE-boots n001 and prints its boot timeline`,
    `  ip netns exec ${ns} bootherd nodes list --config ${state.configFile}`,
    ...(state.lab.clients.length ? [`  ip netns exec ${state.lab.clients[0]!.ns} dhclient -v -1 -lf /tmp/${state.name}.leases -sf /bin/true eth0`] : []),
    `  bootherd lab down${state.name === 'lab' ? '' : ` --name ${state.name}`}`,
  ];
}
