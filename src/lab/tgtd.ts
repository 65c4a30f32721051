/**
 * The lab's iSCSI target: Debian's userspace tgtd, started by `lab up --iscsi`
 * in the head namespace and listening on the head's address only, so that
 * bootherd's tgt backend exports the nodes' root disks from it. Like the lab's
 * bootherd it is detached and outlives `lab up`; `lab down` stops it.
 *
 * tgtd's management socket lives in the filesystem
 * (/var/run/tgtd/socket.<control port>), not in the namespace, so every lab
 * (and every test's tgtd) needs a control port of its own.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';

export const TGTD_SOCKET_DIR = '/var/run/tgtd';

/** A control port (1000-31999; tgtd takes 0-32767) whose socket no tgtd has now, starting from a seed. */
export function freeTgtdControlPort(seed: number): number {
  for (let i = 0; i < 31000; i++) {
    const port = 1000 + ((seed + i) % 31000);
    if (!existsSync(`${TGTD_SOCKET_DIR}/socket.${port}`)) return port;
  }
  throw new Error(`no free tgtd control port: every ${TGTD_SOCKET_DIR}/socket.N from 1000 to 31999 exists`);
}

export interface LabTgtd {
  readonly pid: number;
  readonly controlPort: number;
  /** address:port it serves iSCSI on. */
  readonly portal: string;
  readonly log: string;
}

/** Whether the tgtd on `controlPort` answers and serves `portal`; else what tgtadm said. */
export function tgtdServes(controlPort: number, portal: string): { ok: boolean; stderr: string } {
  const r = spawnSync('tgtadm', ['-C', String(controlPort), '--lld', 'iscsi', '--mode', 'portal', '--op', 'show'], { encoding: 'utf8', timeout: 5000 });
  return { ok: r.status === 0 && r.stdout.includes(portal), stderr: r.stderr ?? '' };
}

/** Starts tgtd in the namespace, detached, and waits until it answers on its control port with the portal. */
export async function startLabTgtd(ns: string, portal: string, logFile: string): Promise<LabTgtd> {
  if (spawnSync('tgtd', ['--help'], { stdio: 'ignore' }).error) throw new Error('tgtd is missing: run scripts/setup.sh (Debian package tgt)');
  const controlPort = freeTgtdControlPort(process.pid * 7);
  const fd = openSync(logFile, 'a');
  // -f: in the foreground of its own process, so the PID is tgtd's (ip netns exec execs it) and its messages go to the log.
  const child = spawn('ip', ['netns', 'exec', ns, 'tgtd', '-f', '-C', String(controlPort), '--iscsi', `portal=${portal}`], {
    detached: true, stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start tgtd');
  const tgtd: LabTgtd = { pid, controlPort, portal, log: logFile };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = tgtdServes(controlPort, portal);
    if (r.ok) return tgtd;
    if (child.exitCode !== null || !existsSync(`/proc/${pid}`) || Date.now() > deadline) {
      stopLabTgtd(tgtd);
      throw new Error(`tgtd did not come up on control port ${controlPort} with portal ${portal}: ${r.stderr.trim()} ${readFileSync(logFile, 'utf8').trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Whether this lab's tgtd still runs (a PID can be reused: its command line must name our control port). */
export function labTgtdRunning(tgtd: LabTgtd): boolean {
  try {
    return readFileSync(`/proc/${tgtd.pid}/cmdline`, 'utf8').split('\0').includes(String(tgtd.controlPort));
  } catch {
    return false;
  }
}

/** Removes the control socket (and its lock) a killed tgtd leaves behind, so its port counts as free again. */
export function removeTgtdSocket(controlPort: number): void {
  for (const f of [`socket.${controlPort}`, `socket.${controlPort}.lock`]) rmSync(`${TGTD_SOCKET_DIR}/${f}`, { force: true });
}

/** Kills tgtd (its exports are bootherd's, nothing to save) and removes its control socket. */
export function stopLabTgtd(tgtd: LabTgtd): void {
  if (labTgtdRunning(tgtd)) {
    try { process.kill(tgtd.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  removeTgtdSocket(tgtd.controlPort);
}
