/** What the benchmarks measure of the disk their state lives on. */
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

/** fdatasync latency of 4 KiB appends to a file in `dir`, in ms: sorted samples. */
export function fdatasyncLatencies(dir: string, samples = 500): number[] {
  const file = path.join(dir, 'sync-probe');
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(4096, 1);
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) {
    writeSync(fd, block);
    const t = performance.now();
    fdatasyncSync(fd);
    ms.push(performance.now() - t);
  }
  closeSync(fd);
  rmSync(file, { force: true });
  return ms.sort((a, b) => a - b);
}

/** The p-quantile (0..1) of sorted samples. */
export const quantile = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
