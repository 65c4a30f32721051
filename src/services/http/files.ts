/**
 * Boot file downloads: kernels, initrds and images from the boot file root,
 * iPXE loaders from boot-assets/ipxe. What a client may ask for (a path that
 * stays under its root) and which bytes it gets (Range). The bytes go out by
 * sendfile(2) from the kernel's page cache (src/net/sendfile-pump.ts); only
 * TLS connections read them through a stream.
 */
import type { Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';

export class FilePathError extends Error {
  constructor(readonly reason: 'bad-path' | 'path-traversal', message: string) {
    super(message);
    this.name = 'FilePathError';
  }
}

/**
 * The absolute file for a (percent-decoded) path below `root`. Rejects NUL
 * bytes, backslashes, and any `.` or `..` segment outright rather than
 * normalising them: a boot client has no reason to send one, and a request
 * that does is probing.
 */
export function resolveUnder(root: string, requested: string): string {
  if (!requested || requested.includes('\0') || requested.includes('\\')) throw new FilePathError('bad-path', 'expected a file path like images/vmlinuz');
  const segments = requested.split('/');
  for (const s of segments) {
    if (s === '..' || s === '.') throw new FilePathError('path-traversal', 'the path leaves the boot file root (a "." or ".." segment)');
  }
  const rel = segments.filter(Boolean).join('/');
  if (!rel) throw new FilePathError('bad-path', 'expected a file path like images/vmlinuz');
  const full = path.resolve(root, rel);
  if (!full.startsWith(root.endsWith(path.sep) ? root : root + path.sep)) throw new FilePathError('path-traversal', 'the path leaves the boot file root');
  return full;
}

/** Inclusive byte range. */
export interface ByteRange { readonly start: number; readonly end: number }

/**
 * Longest Range header looked at. A single range is `bytes=` and two numbers
 * of at most 16 digits (a file under 2^53 bytes); with room for optional
 * whitespace that is far below this. Longer headers are refused unread.
 */
export const MAX_RANGE_HEADER = 128;

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isSpace = (c: number) => c === 0x20 || c === 0x09;
/** A range unit other than bytes (RFC 9110 14.1): letters only here, enough to tell "another unit" from junk. */
const isWord = (s: string) => s.length > 0 && [...s].every((c) => c >= 'a' && c <= 'z');

/**
 * The range a `Range` header asks for (RFC 9110 14.2): a single
 * `bytes=a-b`, `bytes=a-` or `bytes=-n`. Returns 'whole' when the header is
 * absent, asks for another unit, or for several ranges (a server may answer
 * those with the whole file, and boot clients never send them), 'malformed'
 * when it is not a range at all or longer than MAX_RANGE_HEADER (also served
 * whole, but counted), and 'unsatisfiable' for a range that starts past the
 * end (416). One pass over at most MAX_RANGE_HEADER characters, no regex: a
 * header is attacker input up to node's 16 KiB header limit, and a
 * backtracking regex over it cost 300 ms of the shared event loop.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'whole' | 'malformed' | 'unsatisfiable' {
  if (!header) return 'whole';
  if (header.length > MAX_RANGE_HEADER) return 'malformed';
  let i = 0;
  const n = header.length;
  const skipSpace = () => { while (i < n && isSpace(header.charCodeAt(i))) i++; };
  const digits = () => { const from = i; while (i < n && isDigit(header.charCodeAt(i))) i++; return header.slice(from, i); };
  skipSpace();
  const unitEnd = header.indexOf('=', i);
  if (unitEnd < 0) return 'malformed';
  const unit = header.slice(i, unitEnd).trimEnd().toLowerCase();
  if (unit !== 'bytes') return isWord(unit) ? 'whole' : 'malformed';
  i = unitEnd + 1;
  skipSpace();
  const a = digits();
  skipSpace();
  if (header.charCodeAt(i) !== 0x2d) return 'malformed';
  i++;
  skipSpace();
  const b = digits();
  skipSpace();
  if (i < n) return header.charCodeAt(i) === 0x2c ? 'whole' : 'malformed';
  if (a === '' && b === '') return 'malformed';
  if (a.length > 16 || b.length > 16) return 'malformed';
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  if (start >= size) return 'unsatisfiable';
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (end < start) return 'whole';
  return { start, end };
}

/** A strong validator from inode, size and mtime: changes whenever the file does. */
export function etagOf(st: Stats): string {
  return `"${st.ino.toString(36)}-${st.size.toString(36)}-${Math.floor(st.mtimeMs).toString(36)}"`;
}

/** A read stream for a range of a file; large reads so a 64 MiB initrd is a few hundred syscalls, not thousands. */
export function fileStream(file: FileHandle, range: ByteRange): Readable {
  return file.createReadStream({ start: range.start, end: range.end, highWaterMark: 1 << 20 });
}
