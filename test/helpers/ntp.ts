/**
 * NTP lab helpers (test/helpers only): bootherd heads and chronyd servers in
 * lab namespaces, and the real clients' answers parsed. Every wait is
 * bounded, so a hang fails the test instead of blocking it.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Lab } from '../../src/lab/netns.ts';
import { BIN } from './lab-server.ts';

export interface Head {
  readonly ns: string;
  logs(): string;
  /** Parsed JSON log lines. */
  events(): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Starts bootherd in `ns` with this cluster file; resolves once it logs "bootherd started". */
export async function startHead(lab: Lab, ns: string, clusterFile: string): Promise<Head> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-ntp-'));
  const file = path.join(dir, 'cluster.yaml');
  writeFileSync(file, clusterFile.replaceAll('STATE_DIR', path.join(dir, 'state')));
  const proc = lab.spawn(ns, process.execPath, [BIN, 'serve', '--config', file]);
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bootherd in ${ns} did not start within 30 s:\n${log}`)), 30_000);
    const check = () => { if (log.includes('"msg":"bootherd started"')) { clearTimeout(timer); proc.stderr!.off('data', check); resolve(); } };
    proc.stderr!.on('data', check);
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`bootherd in ${ns} exited with ${code}:\n${log}`)); });
  });
  proc.removeAllListeners('exit');
  return {
    ns,
    logs: () => log,
    events: () => log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: () => stopProcess(proc),
  };
}

function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
  return exited.finally(() => clearTimeout(timer));
}

/** Waits until `probe` returns a value (not undefined), polling; fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs: number, detail: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The last "NTP state changed" event a head logged. */
export function lastState(h: Head): Record<string, unknown> | undefined {
  return h.events().filter((e) => e['msg'] === 'NTP state changed').at(-1);
}

/**
 * chronyd as a time server in `ns`: a local reference at `stratum`, serving
 * the lab. -x: it never touches the system clock, which every namespace
 * shares with the host.
 */
export function startChronydServer(lab: Lab, ns: string, stratum: number): { proc: ChildProcess; stop(): Promise<void> } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-chrony-'));
  const conf = path.join(dir, 'chrony.conf');
  writeFileSync(conf, [`local stratum ${stratum}`, 'allow 198.18.0.0/15', 'cmdport 0', `pidfile ${dir}/chronyd.pid`, ''].join('\n'));
  const proc = lab.spawn(ns, 'chronyd', ['-x', '-d', '-u', 'root', '-f', conf]);
  return { proc, stop: () => stopProcess(proc) };
}

export interface ClientAnswer {
  readonly stratum: number;
  /** Server minus client, seconds. */
  readonly offset: number;
}

/**
 * ntpsec's ntpdig (also installed as sntp and behind ntpdate) with JSON
 * output; `samples` > 1 keeps the answer with the shortest round trip.
 */
export function ntpdig(lab: Lab, ns: string, server: string, samples = 1): { answer?: ClientAnswer; output: string } {
  const r = lab.run(ns, 'ntpdig', ['-j', '-t', '2', '-p', String(samples), server], 30_000);
  const output = r.stdout + r.stderr;
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) return { output };
  const j = JSON.parse(line) as { stratum: number; offset: number };
  return { answer: { stratum: j.stratum, offset: j.offset }, output };
}

/** `chronyd -Q`: chrony's client measures the server once (4 samples) and prints the offset; the clock is left alone. */
export function chronydQuery(lab: Lab, ns: string, server: string): { offset?: number; output: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-chronyq-'));
  const r = lab.run(ns, 'chronyd', ['-Q', '-u', 'root', '-f', '/dev/null', `server ${server} iburst maxsamples 4`, `pidfile ${dir}/q.pid`], 40_000);
  const output = r.stdout + r.stderr;
  const m = /System clock wrong by (-?[\d.]+) seconds/.exec(output);
  // chronyd prints how wrong the client clock is: the server's offset is the same number.
  return { offset: m ? Number(m[1]) : undefined, output };
}
