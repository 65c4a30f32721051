/**
 * The access and error logs, in the Apache httpd formats the seed's head
 * keeps (api_access_log, api_error_log), so the same log tooling (goaccess,
 * fail2ban, grep) reads them. Lines go through append streams: a request costs
 * one buffered write, never a synchronous disk wait.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const two = (n: number) => (n < 10 ? '0' : '') + n;

/** Common Log Format time, always UTC: 25/Nov/2026:00:23:03 +0000 */
export function clfTime(d: Date): string {
  return `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

/** Apache 2.4 error log time: Wed Nov 25 00:23:03.123 2026 (UTC). */
export function errorLogTime(d: Date): string {
  const ms = String(d.getUTCMilliseconds()).padStart(3, '0');
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}.${ms} ${d.getUTCFullYear()}`;
}

/** Quotes a request field the way Apache does: backslash-escape quotes, backslashes and control bytes. */
function quoted(v: string | undefined): string {
  if (!v) return '"-"';
  return `"${v.replace(/[\\"\x00-\x1f\x7f]/g, (c) => (c === '"' || c === '\\' ? '\\' + c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))}"`;
}

export interface AccessEntry {
  readonly client: string;
  /** Authenticated user (`api` for the bearer token), or undefined. */
  readonly user: string | undefined;
  readonly time: Date;
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly status: number;
  /** Body bytes sent, or undefined when unknown. */
  readonly bytes: number | undefined;
  readonly referer: string | undefined;
  readonly userAgent: string | undefined;
}

/** One line of the Apache "combined" format. */
export function combinedLine(e: AccessEntry): string {
  return `${e.client} - ${e.user ?? '-'} [${clfTime(e.time)}] ${quoted(`${e.method} ${e.url} HTTP/${e.httpVersion}`)} ${e.status} ${e.bytes === undefined ? '-' : e.bytes} ${quoted(e.referer)} ${quoted(e.userAgent)}\n`;
}

/** One line of the Apache 2.4 error log format. */
export function errorLine(time: Date, level: 'error' | 'warn', client: string, message: string): string {
  return `[${errorLogTime(time)}] [http:${level}] [pid ${process.pid}] [client ${client}] ${message.replace(/[\r\n]+/g, ' ')}\n`;
}

export class HttpLogs {
  private readonly access: WriteStream;
  private readonly error: WriteStream;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.access = createWriteStream(path.join(dir, 'api_access_log'), { flags: 'a' });
    this.error = createWriteStream(path.join(dir, 'api_error_log'), { flags: 'a' });
  }

  accessed(e: AccessEntry): void {
    this.access.write(combinedLine(e));
  }

  failed(level: 'error' | 'warn', client: string, message: string): void {
    this.error.write(errorLine(new Date(), level, client, message));
  }

  async close(): Promise<void> {
    await Promise.all([this.access, this.error].map((s) => new Promise<void>((r) => s.end(() => r()))));
  }
}
