import { ErrorCode } from '../../../../protocols/tftp/codec.ts';
import { refuse, type Handler } from '../context.ts';

/** Longest accepted file name, in bytes; boot file names are short, and a long one is a probe. */
export const MAX_NAME_LENGTH = 255;

export type Confined = { readonly ok: true; readonly name: string } | { readonly ok: false; readonly reason: string; readonly why: string };

/**
 * The confinement rule for requested names, before any file system access:
 * printable ASCII, relative, forward slashes only, no `..` segment. `.` and
 * empty segments are dropped, so `a//./b` is `a/b`. What this returns can be
 * joined to a root without leaving it, except through a symbolic link, which
 * the resolver checks with the file's real path.
 */
export function confine(raw: string): Confined {
  if (raw.length > MAX_NAME_LENGTH) return { ok: false, reason: 'name-too-long', why: `names are at most ${MAX_NAME_LENGTH} bytes` };
  if (raw.includes('\0')) return { ok: false, reason: 'name-nul', why: 'file names may not contain NUL bytes' };
  if (raw.includes('\\')) return { ok: false, reason: 'name-backslash', why: 'use / between directories; backslashes are refused' };
  if (/[^\x20-\x7e]/.test(raw)) return { ok: false, reason: 'name-characters', why: 'file names are printable ASCII' };
  if (raw.startsWith('/')) return { ok: false, reason: 'name-absolute', why: 'absolute paths are refused; ask for the name relative to the TFTP root' };
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { ok: false, reason: 'name-parent', why: '".." is refused' };
  if (!parts.length) return { ok: false, reason: 'name-empty', why: 'no file name' };
  return { ok: true, name: parts.join('/') };
}

export const confineName: Handler = (ctx) => {
  const c = confine(ctx.req.filename);
  if (!c.ok) return refuse(ctx, { code: ErrorCode.ACCESS_VIOLATION, message: `access violation: ${c.why}`, reason: c.reason });
  ctx.name = c.name;
  return true;
};
