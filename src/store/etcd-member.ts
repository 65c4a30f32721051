/**
 * This head's own etcd member, for `store: { kind: etcd }` without endpoints:
 * every head of `heads:` runs one, and together they are the cluster's etcd.
 * bootherd starts it as a child process, restarts it (with backoff) when it
 * dies, stops it on shutdown, and passes its log lines to bootherd's logger.
 *
 * Members talk to each other on <head address>:52380 and serve clients on
 * <head address>:2379 and 127.0.0.1:2379, with the data in <state>/etcd.
 * The cluster is bootstrapped statically from `heads:` (no discovery
 * service): every head's file lists the same members. With `store.tls`,
 * members talk TLS to each other (https peer URLs, each checking the other's
 * certificate against the CA); clients stay plain HTTP (docs/heads.md).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../log.ts';

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 52380;

export interface EtcdMemberOptions {
  /** This head: the member's name and the address it listens on. */
  readonly name: string;
  readonly address: string;
  /** Every head of the cluster, this one included: the initial cluster. */
  readonly heads: readonly { readonly name: string; readonly address: string }[];
  /** The member's data directory (<state>/etcd). */
  readonly dataDir: string;
  /** Keeps two clusters on one network from joining each other (the cluster's name). */
  readonly clusterToken: string;
  readonly log: Logger;
  /** The etcd program (default `etcd` on the PATH). */
  readonly binary?: string;
  readonly clientPort?: number;
  readonly peerPort?: number;
  /** First restart delay after the member dies; doubles up to maxRestartDelayMs (defaults 500 ms, 30 s). */
  readonly restartDelayMs?: number;
  readonly maxRestartDelayMs?: number;
  /** PEM files for TLS between members (store.tls, resolved); absent: plain HTTP peers. */
  readonly peerTls?: { readonly ca: string; readonly cert: string; readonly key: string };
}

export const clientUrlOf = (address: string, port = ETCD_CLIENT_PORT): string => `http://${address}:${port}`;
export const peerUrlOf = (address: string, port = ETCD_PEER_PORT, tls = false): string => `${tls ? 'https' : 'http'}://${address}:${port}`;

/** The etcd program's version line, or undefined when it cannot be run (`bootherd check`). */
export function etcdVersion(binary = 'etcd'): string | undefined {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) return undefined;
  return /etcd Version: (\S+)/.exec(r.stdout)?.[1] ?? r.stdout.split('\n')[0];
}

/** The etcd command line for a member (exported for docs and tests). */
export function etcdArgs(o: EtcdMemberOptions): string[] {
  const peerPort = o.peerPort ?? ETCD_PEER_PORT;
  const clientPort = o.clientPort ?? ETCD_CLIENT_PORT;
  // A data directory that holds a member already knows its cluster; the initial-* flags are then ignored by etcd.
  const existing = existsSync(path.join(o.dataDir, 'member'));
  const tls = o.peerTls !== undefined;
  return [
    '--name', o.name,
    '--data-dir', o.dataDir,
    '--listen-peer-urls', peerUrlOf(o.address, peerPort, tls),
    '--initial-advertise-peer-urls', peerUrlOf(o.address, peerPort, tls),
    '--listen-client-urls', `${clientUrlOf(o.address, clientPort)},${clientUrlOf('127.0.0.1', clientPort)}`,
    '--advertise-client-urls', clientUrlOf(o.address, clientPort),
    '--initial-cluster', o.heads.map((h) => `${h.name}=${peerUrlOf(h.address, peerPort, tls)}`).join(','),
    '--initial-cluster-state', existing ? 'existing' : 'new',
    '--initial-cluster-token', o.clusterToken,
    '--logger', 'zap',
    '--log-outputs', 'stderr',
    // Each member presents its certificate and accepts only peers whose certificate the CA signed.
    ...(o.peerTls ? ['--peer-trusted-ca-file', o.peerTls.ca, '--peer-cert-file', o.peerTls.cert, '--peer-key-file', o.peerTls.key, '--peer-client-cert-auth'] : []),
  ];
}

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
const LEVELS: Record<string, Level> = { debug: 'debug', info: 'info', warn: 'warn', error: 'error', dpanic: 'error', panic: 'fatal', fatal: 'fatal' };

export class EtcdMember {
  /** The URL this head's store talks to. */
  readonly clientUrl: string;
  private child: ChildProcess | undefined;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private delay: number;
  private startedAt = 0;
  private readonly log: Logger;
  /** Times the member died and was started again. */
  restarts = 0;

  constructor(private readonly opts: EtcdMemberOptions) {
    this.clientUrl = clientUrlOf(opts.address, opts.clientPort);
    this.log = opts.log.child({ component: 'etcd' });
    this.delay = opts.restartDelayMs ?? 500;
  }

  get pid(): number | undefined { return this.child?.pid; }

  /** Starts the member; it serves once a quorum of the members runs (the store waits for that, not this). */
  start(): void {
    mkdirSync(this.opts.dataDir, { recursive: true, mode: 0o700 });
    this.stopping = false;
    this.spawnMember();
  }

  private spawnMember(): void {
    const args = etcdArgs(this.opts);
    // setpriv --pdeathsig: the member dies with bootherd, even from SIGKILL, so a restarted head finds its ports free.
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', this.opts.binary ?? 'etcd', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.startedAt = Date.now();
    this.log.info({ pid: child.pid, clientUrl: this.clientUrl, dataDir: this.opts.dataDir, state: args[args.indexOf('--initial-cluster-state') + 1] }, 'etcd member starting');
    for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', (line) => this.relay(line));
    child.once('error', (e) => this.log.error({ err: e }, 'etcd member could not be started; is etcd installed (Debian etcd-server)?'));
    child.once('exit', (code, signal) => this.exited(child, code, signal));
  }

  /** One etcd log line (zap JSON) to bootherd's logger, at its own level. */
  private relay(line: string): void {
    let rec: Record<string, unknown>;
    try { rec = JSON.parse(line) as Record<string, unknown>; } catch { this.log.info({ line }, 'etcd output'); return; }
    const { level, msg, ts: _ts, caller: _caller, ...fields } = rec;
    const at = LEVELS[String(level)] ?? 'info';
    // etcd is chatty at info (every raft step at start); its info is bootherd's debug, but warnings stay warnings.
    this.log[at === 'info' ? 'debug' : at](fields, `etcd: ${String(msg)}`);
  }

  private exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    if (this.stopping) { this.log.info({ code, signal }, 'etcd member stopped'); return; }
    // A member that ran a while and then died starts over from the first delay.
    if (Date.now() - this.startedAt > 60_000) this.delay = this.opts.restartDelayMs ?? 500;
    this.log.warn({ code, signal, restartInMs: this.delay }, 'etcd member exited; restarting it');
    this.restartTimer = setTimeout(() => { this.restartTimer = undefined; this.restarts++; this.spawnMember(); }, this.delay);
    this.delay = Math.min(this.delay * 2, this.opts.maxRestartDelayMs ?? 30_000);
  }

  /** SIGTERM (etcd closes its data cleanly), SIGKILL if it has not gone within the grace. */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) { clearTimeout(this.restartTimer); this.restartTimer = undefined; }
    const child = this.child;
    if (!child) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }
}
