/**
 * A real tgtd (Debian's tgt) inside a lab namespace, for the iSCSI tests and
 * benchmark. Its management socket (/var/run/tgtd/socket.<port>) lives in the
 * filesystem, so tgtadm reaches it from any namespace; the port is unique to
 * the calling process so parallel tests never share a daemon.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import type { Lab } from '../../src/lab/netns.ts';

let next = 0;
/** A control port no other test process uses at the same time (none whose socket exists). */
export function uniqueControlPort(): number {
  for (;;) {
    // tgtd takes 0-32767.
    const port = 1000 + ((process.pid * 7 + next++) % 31000);
    if (!existsSync(`/var/run/tgtd/socket.${port}`)) return port;
  }
}

export interface Tgtd {
  readonly controlPort: number;
  /** tgtadm with this daemon's port and --lld iscsi; returns stdout, throws on failure. */
  adm(...args: string[]): string;
  /** The targets as `tgtadm --op show` prints them. */
  show(): string;
  cleanup(): void;
}

export async function startTgtd(lab: Lab, ns: string, portal: string, controlPort = uniqueControlPort()): Promise<Tgtd> {
  const child = lab.spawn(ns, 'tgtd', ['-f', '-C', String(controlPort), '--iscsi', `portal=${portal}`]);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
  const adm = (...args: string[]) => execFileSync('tgtadm', ['-C', String(controlPort), '--lld', 'iscsi', ...args], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const end = Date.now() + 10_000;
  for (;;) {
    const r = spawnSync('tgtadm', ['-C', String(controlPort), '--lld', 'iscsi', '--mode', 'portal', '--op', 'show'], { encoding: 'utf8', timeout: 5000 });
    if (r.status === 0 && r.stdout.includes(portal)) break;
    if (child.exitCode !== null || Date.now() > end) throw new Error(`tgtd did not come up on control port ${controlPort}: ${err}${r.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    controlPort,
    adm,
    show: () => adm('--mode', 'target', '--op', 'show'),
    cleanup() {
      child.kill('SIGKILL');
      for (const f of [`socket.${controlPort}`, `socket.${controlPort}.lock`]) rmSync(`/var/run/tgtd/${f}`, { force: true });
    },
  };
}
