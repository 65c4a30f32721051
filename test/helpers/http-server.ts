/**
 * A bootherd Server in this process with only its HTTP service listening, on
 * 127.0.0.1 at a free port (test/helpers only). DHCP is built (its lease table
 * backs the lease API) but binds no socket; DNS, NTP and TFTP are off. Loopback only: nothing leaves the
 * machine.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { Server } from '../../src/server.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import type { Store } from '../../src/store/store.ts';

interface Teardownable { teardown(fn: () => unknown): void }

export interface HttpTestServer {
  readonly server: Server;
  readonly base: string;
  readonly token: string;
  readonly dir: string;
  /** fetch with the bearer token. */
  authed(p: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * A server built (no socket bound but HTTP's, on loopback). DNS, NTP and TFTP
 * are off unless `allServices`; none of the services but HTTP is started.
 * `extra` is YAML appended to the cluster file (profiles, nodes, an http override...).
 */
export async function startHttpServer(t: Teardownable, opts: { extra?: string; http?: string; files?: Record<string, Buffer | string>; store?: Store; allServices?: boolean } = {}): Promise<HttpTestServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-http-'));
  const files = path.join(dir, 'files');
  mkdirSync(files);
  for (const [name, body] of Object.entries(opts.files ?? {})) {
    mkdirSync(path.dirname(path.join(files, name)), { recursive: true });
    writeFileSync(path.join(files, name), body);
  }
  const port = await freePort();
  const yaml = `
cluster: { name: test, domain: lab.test }
head: { name: head, address: 198.18.0.1 }
state: ${path.join(dir, 'state')}
files: ${files}
subnets:
  - network: 198.18.0.0/24
    pool: 198.18.0.100-198.18.0.150
${opts.allServices ? '' : 'dns: { enabled: false }\nntp: { enabled: false }\ntftp: { enabled: false }'}
http: { address: 127.0.0.1, port: ${port}, baseUrl: "http://127.0.0.1:${port}"${opts.http ? `, ${opts.http}` : ''} }
${opts.extra ?? ''}
`;
  const server = new Server(parseConfig(yaml, path.join(dir, 'cluster.yaml')), { log: silentLogger, store: opts.store ?? new MemoryStore() });
  await server.open();
  await server.http!.start();
  t.teardown(() => server.stop());
  const base = `http://127.0.0.1:${port}`;
  const token = readFileSync(path.join(dir, 'state', 'api-token'), 'utf8').trim();
  return {
    server, base, token, dir,
    authed(p, init = {}) {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${token}`);
      let body = init.body;
      if (init.json !== undefined) { headers.set('content-type', 'application/json'); body = JSON.stringify(init.json); }
      return fetch(base + p, { ...init, headers, body, signal: AbortSignal.timeout(15_000) });
    },
  };
}
