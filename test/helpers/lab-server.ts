/**
 * Runs a real bootherd process inside a lab network (test/helpers only).
 * Each test gets its own namespaces (unique prefix), its own state directory
 * and its own cluster file; the tap teardown kills everything it started.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Lab, type LabOptions } from '../../src/lab/netns.ts';

export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/bootherd.mjs');

let counter = 0;
/** A namespace prefix unique to this process and call. */
export function uniquePrefix(tag: string): string {
  return `bt${tag}${process.pid.toString(36)}${(counter++).toString(36)}`;
}

interface Teardownable { teardown(fn: () => unknown): void }

export interface LabServer {
  readonly lab: Lab;
  readonly dir: string;
  readonly configFile: string;
  /** Everything the server logged (JSON lines), across restarts. */
  logs(): string;
  proc: ChildProcess;
  /** Starts (or restarts) the server and waits until it logs "bootherd started". */
  start(): Promise<void>;
  /** SIGKILL, no goodbye: what a crash or power loss looks like to the state directory. */
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

export interface LabServerOptions extends Omit<LabOptions, 'prefix'> {
  readonly tag: string;
  /** The cluster file; receives the state directory to use. */
  readonly config: (stateDir: string) => string;
  /** Runs once the lab and directory exist, before the server first starts (a daemon the server drives, like tgtd). */
  readonly before?: (lab: Lab, dir: string) => Promise<void> | void;
  /** More `serve` options, like --user. */
  readonly serveArgs?: readonly string[];
  /** The server's environment (default: the test's). */
  readonly env?: NodeJS.ProcessEnv;
}

export async function startLabServer(t: Teardownable, opts: LabServerOptions): Promise<LabServer> {
  const lab = Lab.create({ ...opts, prefix: uniquePrefix(opts.tag) });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-test-'));
  const configFile = path.join(dir, 'cluster.yaml');
  writeFileSync(configFile, opts.config(path.join(dir, 'state')));
  let log = '';
  const ls: LabServer = {
    lab, dir, configFile,
    logs: () => log,
    proc: undefined as unknown as ChildProcess,
    async start() {
      const proc = lab.spawn(lab.head.ns, process.execPath, [BIN, 'serve', '--config', configFile, ...(opts.serveArgs ?? [])], opts.env ? { env: opts.env } : {});
      ls.proc = proc;
      // Only this run's output counts: the log keeps the earlier runs' "bootherd started" too.
      const from = log.length;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`bootherd did not log "bootherd started" (info level) within 20 s:\n${log}`)), 20_000);
        proc.stderr!.on('data', (d: Buffer) => {
          log += d.toString();
          if (log.includes('"msg":"bootherd started"', from)) { clearTimeout(timer); resolve(); }
        });
        proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`bootherd exited with ${code}:\n${log}`)); });
      });
      proc.removeAllListeners('exit');
    },
    async kill9() {
      const p = ls.proc;
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      // `ip netns exec` execs the command, so this is bootherd's own pid.
      p.kill('SIGKILL');
      await exited;
    },
    async stop() {
      const p = ls.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    },
  };
  t.teardown(async () => {
    await ls.stop().catch(() => undefined);
    lab.destroy();
  });
  await opts.before?.(lab, dir);
  await ls.start();
  return ls;
}
