/**
 * A real tgtd (Debian's tgt) inside a lab namespace, for the iSCSI tests and
 * benchmark. Its management socket (/var/run/tgtd/socket.<port>) lives in the
 * filesystem, so tgtadm reaches it from any namespace; the port is unique to
 * the calling process so parallel tests never share a daemon.
 */
import { execFileSync } from 'node:child_process';
import type { Lab } from '../../src/lab/netns.ts';
import { freeTgtdControlPort, removeTgtdSocket, tgtdServes } from '../../src/lab/tgtd.ts';

let next = 0;
/** A control port no other test process uses at the same time (none whose socket exists). */
export function uniqueControlPort(): number {
  return freeTgtdControlPort(process.pid * 7 + next++);
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
    const r = tgtdServes(controlPort, portal);
    if (r.ok) break;
    if (child.exitCode !== null || Date.now() > end) throw new Error(`tgtd did not come up on control port ${controlPort}: ${err}${r.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    controlPort,
    adm,
    show: () => adm('--mode', 'target', '--op', 'show'),
    cleanup() {
      child.kill('SIGKILL');
      removeTgtdSocket(controlPort);
    },
  };
}
