/**
 * `bootherd serve` as a daemon: start, tell systemd when every socket is
 * bound (sd_notify READY=1), stop on SIGTERM/SIGINT, and reload the cluster
 * file on SIGHUP (docs/install.md, "Reload").
 *
 * Reload reads and validates the file first: an invalid file is logged and
 * the running services go on with the old one. A file whose only change is
 * log.level applies it at once; any other change restarts the services in
 * this process (the store keeps nodes and leases; sockets are bound again,
 * which the capabilities kept by `serve --user` and the unit allow).
 */
import { isDeepStrictEqual } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/load.ts';
import { sdNotify } from '../net/sd-notify.ts';
import type { Runner } from '../services/iscsi/backend.ts';
import { Server } from '../server.ts';
import { underSupervisor } from './privileges.ts';

export interface ServeOptions {
  readonly repairStore?: boolean;
  readonly iscsiRunner?: Runner;
}

/** What changed between two configs, by top-level section (source excluded). */
export function changedSections(a: Config, b: Config): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  keys.delete('source');
  return [...keys].filter((k) => !isDeepStrictEqual((a as unknown as Record<string, unknown>)[k], (b as unknown as Record<string, unknown>)[k])).sort();
}

export async function serve(file: string, config: Config, opts: ServeOptions): Promise<void> {
  let server = new Server(config, { repairStore: opts.repairStore, iscsiRunner: opts.iscsiRunner });
  /** The file as last applied (a log-level change applies without a new Server). */
  let current = config;
  // One thing at a time: a stop waits for a reload in progress, a second SIGHUP for the first.
  let busy: Promise<void> = Promise.resolve();
  const serially = (job: () => Promise<void>) => { busy = busy.then(job, job); return busy; };

  const shutdown = (why: string) => serially(async () => {
    server.log.info({ signal: why }, 'stopping');
    sdNotify('STOPPING=1');
    await server.stop();
    process.exit(0);
  });
  const reload = () => serially(async () => {
    sdNotify('RELOADING=1');
    const log = server.log;
    let next: Config;
    try {
      next = loadConfig(file);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      log.error({ config: file, errors: e.message }, 'reload refused: the cluster file is invalid; the services go on with the file as it was');
      sdNotify('READY=1');
      return;
    }
    const changed = changedSections(current, next);
    if (!changed.length) {
      log.info({ config: file }, 'reload: the cluster file is unchanged');
    } else if (changed.length === 1 && changed[0] === 'log') {
      log.level = next.log.level;
      log.info({ logLevel: next.log.level }, 'reload: log level changed');
    } else {
      const started = Date.now();
      log.info({ changed }, 'reload: restarting the services with the new cluster file');
      await server.stop();
      const old = server.config;
      server = new Server(next, { iscsiRunner: opts.iscsiRunner });
      try {
        await server.start();
        server.log.info({ changed, ms: Date.now() - started }, 'reload: done');
      } catch (e) {
        server.log.error({ err: e }, `reload failed (${(e as Error).message}); starting again with the file as it was`);
        server = new Server(old, { iscsiRunner: opts.iscsiRunner });
        await server.start();
        sdNotify('READY=1');
        return;
      }
    }
    current = next;
    sdNotify('READY=1');
  });

  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  // Under `serve --user`: the supervisor is gone (killed), so nobody would forward a stop.
  process.once('disconnect', () => void shutdown('supervisor gone'));
  process.on('SIGHUP', () => {
    reload().catch((e: unknown) => {
      server.log.fatal({ err: e }, `reload failed and the old file did not start either: ${(e as Error).message}`);
      process.exit(1);
    });
  });
  try {
    await server.start();
  } catch (e) {
    server.log.fatal({ err: e }, (e as Error).message);
    process.exit(1);
  }
  // Under `serve --user` the supervisor is the unit's main process (the drop-in in docs/install.md sets NotifyAccess=all).
  sdNotify(underSupervisor() ? 'READY=1' : `READY=1\nMAINPID=${process.pid}`);
}
