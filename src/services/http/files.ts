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
 * The range a `Range` header asks for (RFC 9110 14.2): a single
 * `bytes=a-b`, `bytes=a-` or `bytes=-n`. Returns 'whole' when the header is
 * absent, malformed, or asks for several ranges (a server may answer those
 * with the whole file, and boot clients never send them), and 'unsatisfiable'
 * for a range that starts past the end (416).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'whole' | 'unsatisfiable' {
  if (!header) return 'whole';
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return 'whole';
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '' && b === '') return 'whole';
  if (a === '') {
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
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
