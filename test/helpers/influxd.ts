/**
 * A real influxd (Debian's influxdb 1.6) in a lab namespace with its own
 * config and data directory (test/helpers only). Its HTTP API listens on the
 * namespace's address at a port of the test's choosing; the other listeners
 * (RPC bind address) stay on the namespace's loopback; reporting is off.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Lab } from '../../src/lab/netns.ts';

export interface Influxd {
  readonly url: string;
  readonly ns: string;
  proc: ChildProcess | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** `influx -execute` in the namespace against this server; the CLI's stdout. */
  query(q: string, db?: string): string;
  /** The rows of a query as JSON values (influx -format json). */
  rows(q: string, db?: string): unknown[][];
  logs(): string;
}

export function influxdConfig(dir: string, address: string, port: number): string {
  return `reporting-disabled = true
bind-address = "127.0.0.1:${port + 1}"
[meta]
  dir = "${path.join(dir, 'meta')}"
[data]
  dir = "${path.join(dir, 'data')}"
  wal-dir = "${path.join(dir, 'wal')}"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "${address}:${port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
`;
}

export function createInfluxd(lab: Lab, ns: string, address: string, dir: string, port = 8086): Influxd {
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'influxdb.conf');
  writeFileSync(conf, influxdConfig(dir, address, port));
  let log = '';
  const url = `http://${address}:${port}`;
  const self: Influxd = {
    url, ns, proc: undefined,
    logs: () => log,
    async start() {
      const proc = lab.spawn(ns, 'influxd', ['-config', conf]);
      self.proc = proc;
      proc.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
      proc.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
      // Ready when /ping answers 204 (bounded: 150 tries, 100 ms apart).
      for (let i = 0; i < 150; i++) {
        if (proc.exitCode !== null) throw new Error(`influxd exited with ${proc.exitCode}:\n${log}`);
        const r = lab.run(ns, 'curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '1', `${url}/ping`], 5000);
        if (r.stdout.trim() === '204') return;
        await new Promise((res) => setTimeout(res, 100));
      }
      throw new Error(`influxd did not answer /ping within 15 s:\n${log}`);
    },
    async stop() {
      const p = self.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await exited;
    },
    query(q, db) {
      return lab.exec(ns, 'influx', ['-host', address, '-port', String(port), ...(db ? ['-database', db] : []), '-execute', q]);
    },
    rows(q, db) {
      const out = lab.exec(ns, 'influx', ['-host', address, '-port', String(port), '-format', 'json', ...(db ? ['-database', db] : []), '-precision', 'ns', '-execute', q]);
      // Nanosecond times pass 2^53: keep long integers as strings.
      const parsed = JSON.parse(out.replace(/([[,])(-?\d{16,})(?=[,\]])/g, '$1"$2"')) as { results: Array<{ series?: Array<{ values: unknown[][] }> }> };
      return parsed.results.flatMap((r) => r.series ?? []).flatMap((s) => s.values);
    },
  };
  return self;
}
