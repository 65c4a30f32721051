/**
 * One interface over the two targets bootherd can drive: the kernel's LIO
 * target through targetcli (targetcli.ts) and the userspace tgtd through
 * tgtadm (tgt.ts). bootherd never speaks iSCSI itself; a backend turns the
 * planner's operations into the tool's commands, one process each, argument
 * arrays and no shell, and stops at the first command that fails.
 */
import { execFile } from 'node:child_process';
import type { Op, BackendShape } from './plan.ts';
import type { TargetSystemState } from './state.ts';

export interface CommandResult {
  /** Exit status; a command killed by a signal or its timeout counts as failed (-1). */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs one command. Rejects only when the program cannot be started
 * (ToolMissingError); a failing command resolves with its exit status.
 * Tests replace it with a fake that records argv.
 */
export type Runner = (file: string, args: readonly string[]) => Promise<CommandResult>;

export class ToolMissingError extends Error {
  constructor(readonly tool: string, readonly hint: string) {
    super(`${tool} not found on PATH (${hint})`);
    this.name = 'ToolMissingError';
  }
}

/** A command that failed: its argv and what it said, so the log shows exactly what to retry by hand. */
export class ToolError extends Error {
  constructor(readonly argv: readonly string[], readonly code: number, readonly output: string) {
    super(`${argv.join(' ')} failed (${code === -1 ? 'killed or timed out' : `exit ${code}`}): ${output.trim() || '(no output)'}`);
    this.name = 'ToolError';
  }
}

/** A target state the backend could not make sense of. */
export class StateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateError';
  }
}

/** How long one targetcli/tgtadm command may take before it counts as failed. */
const COMMAND_TIMEOUT_MS = 120_000;

export function execRunner(hints: Readonly<Record<string, string>> = {}): Runner {
  return (file, args) => new Promise((resolve, reject) => {
    execFile(file, args, { timeout: COMMAND_TIMEOUT_MS, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new ToolMissingError(file, hints[file] ?? 'install it'));
        return;
      }
      const code = !err ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Runs a command and returns its stdout, or throws a ToolError with its
 * output; `secrets` (CHAP secrets among the arguments) are masked in the error,
 * which reaches the log and the API's status.
 */
export async function runChecked(run: Runner, file: string, args: readonly string[], secrets: readonly string[] = []): Promise<string> {
  const r = await run(file, args);
  if (r.code !== 0) {
    const mask = (text: string) => secrets.reduce((t, s) => (s ? t.replaceAll(s, '***') : t), text);
    throw new ToolError([file, ...args].map(mask), r.code, mask(`${r.stderr}\n${r.stdout}`.trim()));
  }
  return r.stdout;
}

export type Availability =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: string };

export interface IscsiBackend {
  readonly name: 'targetcli' | 'tgt';
  readonly shape: BackendShape;
  /** Checks that the tool is installed and the target is there; says why not. */
  probe(): Promise<Availability>;
  read(): Promise<TargetSystemState>;
  /** Applies the operations in order; the first failure throws (a ToolError naming the command) and the rest are not run. */
  apply(ops: readonly Op[], onApplied?: (op: Op) => void): Promise<void>;
  /** Makes the current state survive a reboot of the head (targetcli saveconfig; tgt: nothing, see tgt.ts). */
  save(): Promise<void>;
}
