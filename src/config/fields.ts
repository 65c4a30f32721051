/**
 * Field types shared by the cluster file's sections. Each carries a message
 * that says what is expected, so a validation error can name the field, what
 * it holds and how to fix it.
 */
import { isIPv6 } from 'node:net';
import { z } from 'zod';
import { isIpv4, parseCidr } from '../net/ipv4.ts';
import { isMac, normalizeMac } from '../net/mac.ts';

// `meta`: what the OpenAPI document shows of a field (src/services/http/api-schemas.ts); it does not change a parse.
export const ipv4 = z.string({ error: 'expected an IPv4 address like 198.18.0.1' })
  .refine(isIpv4, { error: 'expected an IPv4 address like 198.18.0.1' })
  .meta({ format: 'ipv4', example: '198.18.0.11' });

/** A server to talk to, `198.18.0.53` or `198.18.0.53:5353`, as { address, port }; `hint` says what is expected. */
export function serverAddress(defaultPort: number, hint: string) {
  return z.string({ error: hint }).transform((v, ctx) => {
    const m = /^([\d.]+)(?::(\d{1,5}))?$/.exec(v.trim());
    const p = m?.[2] === undefined ? defaultPort : Number(m[2]);
    if (!m || !isIpv4(m[1]!) || p < 1 || p > 65535) {
      ctx.addIssue({ code: 'custom', message: `${hint}; got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return { address: m[1]!, port: p };
  });
}

/** IPv6 addresses (a node's AAAA record); kept as written, lowercased. */
export const ipv6 = z.string({ error: 'expected an IPv6 address like fd00::11' })
  .refine((v) => isIPv6(v), { error: 'expected an IPv6 address like fd00::11' })
  .transform((v) => v.toLowerCase())
  .meta({ format: 'ipv6', example: 'fd00::11' });

export const cidr = z.string({ error: 'expected a network like 198.18.0.0/24' }).superRefine((v, ctx) => {
  try { parseCidr(v); } catch (e) { ctx.addIssue({ code: 'custom', message: (e as Error).message }); }
});

export const mac = z.string({ error: 'expected a MAC address like 52:54:00:12:34:56' })
  .refine(isMac, { error: 'expected a MAC address like 52:54:00:12:34:56' })
  .transform(normalizeMac)
  .meta({ description: 'a MAC address: aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabbccddeeff', example: '52:54:00:12:34:56' });

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
export const hostname = z.string({ error: 'expected a host name like n001 (letters, digits, hyphens)' })
  .refine((v) => HOSTNAME.test(v), { error: 'expected a host name like n001 (letters, digits and hyphens, dots between labels)' })
  .transform((v) => v.toLowerCase())
  .meta({ description: 'a host name (lower-cased)', example: 'n001' });

/** DNS owner names may carry underscores (SRV: _slurmctld._tcp). */
const OWNER = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*\.?$/i;
export const ownerName = z.string({ error: 'expected a DNS name like _slurmctld._tcp' })
  .refine((v) => OWNER.test(v), { error: 'expected a DNS name like _slurmctld._tcp or head.cluster.lab' })
  .transform((v) => v.toLowerCase().replace(/\.$/, ''))
  .meta({ description: 'a DNS name (lower-cased)', example: '_slurmctld._tcp' });

export const port = z.number({ error: 'expected a port number 0-65535' }).int().min(0).max(65535);

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
/** Durations are seconds: a number, or text like 90s, 10m, 12h, 7d. */
export const duration = z.union([z.number().int().nonnegative(), z.string()], { error: 'expected a duration like 3600, 90s, 10m, 12h or 7d' })
  .transform((v, ctx) => {
    if (typeof v === 'number') return v;
    const m = /^(\d+)\s*([smhd]?)$/.exec(v.trim());
    if (!m) { ctx.addIssue({ code: 'custom', message: `expected a duration like 3600, 90s, 10m, 12h or 7d, got ${JSON.stringify(v)}` }); return z.NEVER; }
    return Number(m[1]) * UNITS[m[2] || 's']!;
  });

export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'expected one of fatal, error, warn, info, debug, trace, silent' });
