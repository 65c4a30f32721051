/**
 * Drives `bootherd lab` the way a person does, for the VM boot tests: `lab up`
 * with a unique name, `lab boot --json`, `lab down` at teardown. A failed boot
 * leaves its serial console in test/artifacts/.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { LabBootReport } from '../../src/lab/boot.ts';
import { readLab, type LabState } from '../../src/lab/running.ts';
import { BIN, uniquePrefix } from './lab-server.ts';

export const ARTIFACTS = path.resolve(path.dirname(BIN), '../test/artifacts');

export interface CliRun { readonly code: number; readonly stdout: string; readonly stderr: string }

/** Runs `bootherd ARGS` (bounded; a hang fails the test instead of blocking it). */
export function bootherd(args: readonly string[], timeoutMs: number): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

interface Teardownable { teardown(fn: () => unknown): void }

/** `bootherd lab up` under a unique name (more `lab up` options in `options`); `lab down` when the test ends. */
export async function labUpForTest(t: Teardownable, tag: string, nodes = 2, options: readonly string[] = []): Promise<LabState> {
  // Lab names become namespace names bootherd-<name>-*: keep them short and unique per test process.
  const name = uniquePrefix(tag);
  t.teardown(() => bootherd(['lab', 'down', '--name', name], 60_000));
  const up = await bootherd(['lab', 'up', '--name', name, '--nodes', String(nodes), ...options], 15 * 60_000);
  if (up.code !== 0) throw new Error(`bootherd lab up failed (${up.code}):\n${up.stderr}${up.stdout}`);
  return readLab(name)!;
}

/** `bootherd lab boot --json ...`; the report, and its console kept in test/artifacts when the boot failed. */
export async function labBootForTest(state: LabState, args: readonly string[], label: string, timeoutSeconds = 240): Promise<{ run: CliRun; report: LabBootReport | undefined }> {
  const consoleFile = path.join(state.dir, `console-${label}.log`);
  const run = await bootherd(['lab', 'boot', '--name', state.name, '--json', '--timeout', String(timeoutSeconds), '--console', consoleFile, ...args], (timeoutSeconds + 90) * 1000);
  let report: LabBootReport | undefined;
  try { report = JSON.parse(run.stdout) as LabBootReport; } catch { /* reported by the caller */ }
  if ((run.code !== 0 || !report?.ok) && existsSync(consoleFile)) {
    mkdirSync(ARTIFACTS, { recursive: true });
    copyFileSync(consoleFile, path.join(ARTIFACTS, `lab-console-${label}.log`));
  }
  return { run, report };
}
