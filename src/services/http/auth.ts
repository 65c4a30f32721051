/**
 * Who may do what. Changes need the bearer token kept in <state>/api-token
 * (created at first start, mode 0600: whoever can read it administers the
 * cluster). Reads need it too, unless `http.readOpenTo` opens them to the
 * cluster networks or to anyone. Boot files are open: firmware cannot carry a
 * token. The "booted" call-back needs no token but must come from a cluster
 * network (and, checked by its route, from the node itself).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ClusterModel } from '../../cluster/model.ts';
import type { HttpConfig } from '../../config/sections/http.ts';
import { ipToInt, isIpv4 } from '../../net/ipv4.ts';

/** What a route needs: nothing, a cluster-network client, read access, or the token. */
export type Access = 'open' | 'cluster' | 'read' | 'write';

export const TOKEN_FILE = 'api-token';
export const TOKEN_COOKIE = 'bootherd_token';

/** Reads <stateDir>/<name> (default api-token), creating it (random, mode 0600) when absent. */
export function ensureToken(stateDir: string, name = TOKEN_FILE): string {
  const file = path.join(stateDir, name);
  try {
    const token = readFileSync(file, 'utf8').trim();
    if (token) return token;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  mkdirSync(stateDir, { recursive: true });
  const token = randomBytes(32).toString('base64url');
  writeFileSync(file, token + '\n', { mode: 0o600, flag: 'w' });
  chmodSync(file, 0o600);
  return token;
}

/** Client address as dotted quad (IPv4-mapped IPv6 unwrapped), or '' for anything else. */
export function clientIpv4(remote: string | undefined): string {
  if (!remote) return '';
  const v = remote.startsWith('::ffff:') ? remote.slice(7) : remote;
  return isIpv4(v) ? v : '';
}

export function inClusterNetworks(model: ClusterModel, ip: string): boolean {
  return ip !== '' && model.subnetForIp(ipToInt(ip)) !== undefined;
}

export class AccessPolicy {
  private readonly token: Buffer;

  constructor(token: string, private readonly model: ClusterModel, private readonly readOpenTo: HttpConfig['readOpenTo']) {
    this.token = Buffer.from(token);
  }

  /** Whether a presented token is the API token (constant time). */
  tokenMatches(presented: string | undefined): boolean {
    if (!presented) return false;
    const b = Buffer.from(presented);
    return b.length === this.token.length && timingSafeEqual(b, this.token);
  }

  /**
   * Why a request may not proceed (401/403 and the message), or undefined
   * when it may. `bearer` is the Authorization header's token, `cookie` the
   * UI's token cookie (good for reads only: a cookie rides along with
   * cross-site requests, a header does not).
   */
  check(access: Access, ip: string, bearer: string | undefined, cookie: string | undefined): { status: 401 | 403; message: string } | undefined {
    switch (access) {
      case 'open':
        return undefined;
      case 'cluster':
        if (inClusterNetworks(this.model, ip) || this.tokenMatches(bearer)) return undefined;
        return { status: 403, message: `only machines on the cluster networks (${this.model.subnets.map((s) => s.cidr.text).join(', ')}) may call this` };
      case 'read':
        if (this.tokenMatches(bearer) || this.tokenMatches(cookie)) return undefined;
        if (this.readOpenTo === 'any') return undefined;
        if (this.readOpenTo === 'cluster' && inClusterNetworks(this.model, ip)) return undefined;
        if (bearer) return { status: 401, message: 'wrong bearer token; use the one in <state>/api-token' };
        return { status: 401, message: 'this needs the bearer token from <state>/api-token (Authorization: Bearer <token>)' };
      case 'write':
        if (this.tokenMatches(bearer)) return undefined;
        if (bearer) return { status: 401, message: 'wrong bearer token; use the one in <state>/api-token' };
        return { status: 401, message: 'changes need the bearer token from <state>/api-token (Authorization: Bearer <token>)' };
    }
  }
}

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}

/** One cookie's value from a Cookie header. */
export function cookieOf(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try { return decodeURIComponent(part.slice(eq + 1).trim()); } catch { return undefined; }
    }
  }
  return undefined;
}
