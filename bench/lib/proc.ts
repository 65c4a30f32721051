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

/**
 * CPU seconds (user + system, all threads) a process has used so far;
 * `withChildren` adds its waited-for children's. 0 for a process that is
 * gone (or never was).
 */
export function cpuSeconds(pid: number | undefined, withChildren = false): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command name (in parentheses, and it may hold spaces): state is [0]; utime [11], stime [12], cutime [13], cstime [14].
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0);
    return ticks / USER_HZ;
  } catch {
    return 0;
  }
}
