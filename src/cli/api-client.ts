/**
 * The admin commands' way to the REST API: where it is (--api, BOOTHERD_API,
 * or the http section of --config) and the token (--token, BOOTHERD_TOKEN, or
 * <state>/api-token from --config). Errors carry the API's own message, which
 * names the field at fault.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config/load.ts';
import { TOKEN_FILE } from '../services/http/auth.ts';

export interface ApiOptions {
  readonly config?: string;
  readonly api?: string;
  readonly token?: string;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

export class ApiClient {
  constructor(readonly base: string, private readonly token: string | undefined) {}

  static from(opts: ApiOptions, env: NodeJS.ProcessEnv = process.env): ApiClient {
    let base = opts.api ?? env['BOOTHERD_API'];
    let token = opts.token ?? env['BOOTHERD_TOKEN'];
    if (opts.config && (!base || !token)) {
      const config = loadConfig(opts.config);
      const host = config.http.address === '0.0.0.0' ? '127.0.0.1' : config.http.address;
      base ??= `${config.http.tls ? 'https' : 'http'}://${host}:${config.http.port}`;
      if (!token) {
        try { token = readFileSync(path.join(config.stateDir, TOKEN_FILE), 'utf8').trim(); } catch { /* reads may be open without it */ }
      }
    }
    if (!base) throw new ApiError(0, 'where is the API? give --config <cluster file>, --api <url> or set BOOTHERD_API');
    return new ApiClient(base.replace(/\/$/, ''), token);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token) headers['authorization'] = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(0, `cannot reach the API at ${this.base}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    const text = await res.text();
    let data: unknown;
    try { data = text ? JSON.parse(text) : undefined; } catch { data = text; }
    if (!res.ok) {
      const message = typeof data === 'object' && data && 'message' in data ? String((data as { message: unknown }).message) : `${res.status} ${res.statusText}`;
      throw new ApiError(res.status, message);
    }
    return data as T;
  }

  get<T>(path: string): Promise<T> { return this.request<T>('GET', path); }
}

/** Plain text table: a header row, then rows, columns padded to their widest cell. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}
