/**
 * Real etcd members (Debian's etcd-server) on loopback for the store tests and
 * benchmark: each member gets two free ports on 127.0.0.1 and its own data
 * directory under a temp dir, so parallel test processes never share one.
 * Members can be paused (SIGSTOP), resumed, killed and restarted on the same
 * ports and data, to exercise an unreachable etcd.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** SIGSTOP: the member keeps its sockets but answers nothing. */
  pause(): void;
  resume(): void;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** Starts the member again on the same ports and data; resolves when it is healthy. */
  restart(): Promise<void>;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  readonly endpoints: readonly string[];
  /** etcdctl against this cluster; returns stdout, throws on failure. */
  ctl(...args: string[]): string;
  /** etcdctl against the given members only (the others may be down). */
  ctlAt(members: readonly EtcdMember[], ...args: string[]): string;
  close(): Promise<void>;
}

/** A port the kernel just handed out on 127.0.0.1 (free at that instant). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function healthy(clientUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return body.health === 'true';
  } catch {
    return false;
  }
}

export interface StartEtcdOptions {
  /** Members in the cluster (default 1). */
  readonly members?: number;
  /** Where the data directories go (default a new temp dir, removed on close). */
  readonly dir?: string;
  /** How long to wait for the cluster to become healthy (default 30 s). */
  readonly startTimeoutMs?: number;
  /** Runs the members inside this network namespace (a lab's), on its own loopback; ctl and health checks run there too. */
  readonly netns?: string;
}

/** etcd's /health from inside a namespace (the test process cannot reach that namespace's loopback). */
function healthyIn(netns: string, clientUrl: string): boolean {
  try {
    const out = execFileSync('ip', ['netns', 'exec', netns, 'curl', '-s', '--max-time', '1', `${clientUrl}/health`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return (JSON.parse(out) as { health?: string }).health === 'true';
  } catch {
    return false;
  }
}

function ctl(endpoints: readonly string[], args: readonly string[], netns?: string): string {
  const argv = ['--endpoints', endpoints.join(','), ...args];
  return execFileSync(netns ? 'ip' : 'etcdctl', netns ? ['netns', 'exec', netns, 'etcdctl', ...argv] : argv, {
    encoding: 'utf8', timeout: 15_000, env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdCluster> {
  const count = options.members ?? 1;
  const base = options.dir ?? mkdtempSync(path.join(tmpdir(), 'bootherd-etcd-'));
  const ownDir = options.dir === undefined;
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const specs: { name: string; client: number; peer: number }[] = [];
  for (let i = 0; i < count; i++) specs.push({ name: `m${i}`, client: await freePort(), peer: await freePort() });
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');
  const token = `bootherd-test-${process.pid}-${Date.now()}`;

  const members = specs.map((s) => {
    const clientUrl = `http://127.0.0.1:${s.client}`;
    const peerUrl = `http://127.0.0.1:${s.peer}`;
    const dataDir = path.join(base, s.name);
    let child: ChildProcess | undefined;
    let log = '';
    const args = [
      '--name', s.name, '--data-dir', dataDir,
      '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', initialCluster, '--initial-cluster-token', token,
      '--initial-cluster-state', 'new', '--log-level', 'warn', '--logger', 'zap',
    ];
    const launch = () => {
      log = '';
      child = options.netns
        ? spawn('ip', ['netns', 'exec', options.netns, 'etcd', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
        : spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr?.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-4000); });
    };
    const waitHealthy = async () => {
      const end = Date.now() + startTimeoutMs;
      while (!(options.netns ? healthyIn(options.netns, clientUrl) : await healthy(clientUrl))) {
        if (child?.exitCode !== null && child?.exitCode !== undefined) throw new Error(`etcd ${s.name} exited with ${child.exitCode}: ${log}`);
        if (Date.now() > end) throw new Error(`etcd ${s.name} not healthy on ${clientUrl} within ${startTimeoutMs} ms: ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const kill = async () => {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGCONT');
      c.kill('SIGKILL');
      await exited;
    };
    const member = {
      name: s.name, clientUrl, peerUrl, dataDir,
      pause: () => { child?.kill('SIGSTOP'); },
      resume: () => { child?.kill('SIGCONT'); },
      kill,
      restart: async () => { await kill(); launch(); await waitHealthy(); },
      launch, waitHealthy,
    };
    return member;
  });

  const endpoints = members.map((m) => m.clientUrl);
  const close = async () => {
    await Promise.all(members.map((m) => m.kill()));
    if (ownDir) rmSync(base, { recursive: true, force: true });
  };
  try {
    for (const m of members) m.launch();
    // Members of a new cluster wait for each other, so check health only once all are started.
    for (const m of members) await m.waitHealthy();
  } catch (e) {
    await close();
    throw e;
  }
  return {
    members,
    endpoints,
    ctl: (...args: string[]) => ctl(endpoints, args, options.netns),
    ctlAt: (at: readonly EtcdMember[], ...args: string[]) => ctl(at.map((m) => m.clientUrl), args, options.netns),
    close,
  };
}
