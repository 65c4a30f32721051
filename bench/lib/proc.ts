/**
 * What the benchmarks read about processes from /proc, in one place.
 */
import { readFileSync } from 'node:fs';

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
