/**
 * What the benchmarks read about processes from /proc, how they ask bootherd
 * for a CPU profile, and how they stop a server: in one place.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Node's flags that make bootherd write a V8 CPU profile into `dir` when it exits (none without a dir). */
export function cpuProfileFlags(dir: string | undefined): string[] {
  return dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : [];
}

/**
 * SIGTERM, then SIGKILL if the process has not exited within `graceMs`;
 * resolves once it is gone. A server stopped this way gets to finish on its
 * own (bootherd writes its CPU profile then).
 */
export async function stopProcess(proc: ChildProcess, graceMs = 5000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => { timer = setTimeout(() => r(true), graceMs); })]);
  clearTimeout(timer);
  if (late) { proc.kill('SIGKILL'); await exited; }
}

/** Clock ticks per second in /proc/<pid>/stat (USER_HZ: 100 on Debian's kernels). */
const USER_HZ = 100;

/** CPU seconds a process has used so far, split: user (its own code) and system (the kernel working for it). */
export interface CpuTimes { readonly user: number; readonly system: number }

/**
 * CPU seconds (all threads) a process has used so far, user and system apart;
 * `withChildren` adds its waited-for children's. Zeros for a process that is
 * gone (or never was).
 */
export function cpuTimes(pid: number | undefined, withChildren = false): CpuTimes {
  if (!pid) return { user: 0, system: 0 };
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command name (in parentheses, and it may hold spaces): state is [0]; utime [11], stime [12], cutime [13], cstime [14].
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const user = Number(f[11]) + (withChildren ? Number(f[13]) : 0);
    const system = Number(f[12]) + (withChildren ? Number(f[14]) : 0);
    return { user: user / USER_HZ, system: system / USER_HZ };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** User + system CPU seconds (see cpuTimes). */
export function cpuSeconds(pid: number | undefined, withChildren = false): number {
  const t = cpuTimes(pid, withChildren);
  return t.user + t.system;
}
