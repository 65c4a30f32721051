/**
 * Where TFTP files come from. A confined name (see handlers/name.ts) is
 * looked up in order:
 *   1. rendered files: made per request from the cluster model
 *      (pxelinux.cfg/01-<mac>, the iPXE script), so a node added through the
 *      API has its files at once;
 *   2. directories (roots), first match wins: tftp.root, the boot file root
 *      (`files:`), the iPXE binaries in boot-assets/ipxe.
 *
 * Static files are served from memory: a file is read once and the same
 * Buffer is shared by every transfer of it (a boot storm of 500 nodes costs
 * one read). Files in use stay loaded; unused ones are kept up to
 * `cacheBytes`, least recently used first out. A name's lookup (realpath,
 * stat) is trusted for `revalidateMs`, so a storm does not stat the same file
 * 500 times; after that a changed file (size, mtime or inode) is read again.
 *
 * Symbolic links may be used inside a root, but a name whose real path lies
 * outside its root is refused as an access violation.
 */
import { promises as fs, type Stats } from 'node:fs';
import path from 'node:path';
import { ErrorCode } from '../../../protocols/tftp/codec.ts';
import type { Refusal } from './context.ts';

/** A file made per request (from the cluster model), consulted before any directory. */
export interface RenderedFile {
  /** Short name for logs and metrics, e.g. pxelinux. */
  readonly label: string;
  /** Whether this renderer answers for `name`; if so, no directory is consulted. */
  match(name: string): boolean;
  /** The file for the client at `clientIp`, or undefined when there is none (file not found). */
  render(name: string, clientIp: number): Buffer | undefined;
}

export interface FileRoot {
  /** Short name for logs and metrics, e.g. root, files, loaders. */
  readonly label: string;
  readonly dir: string;
}

export interface ResolvedFile {
  /** The bytes to send (netascii already applied); shared, never to be modified. */
  readonly data: Buffer;
  /** The renderer's or root's label. */
  readonly origin: string;
  /** Gives the file back when the transfer ends, so the cache may drop it. */
  release(): void;
}

export type Resolution = { readonly ok: true; readonly file: ResolvedFile } | { readonly ok: false; readonly refusal: Refusal };

export interface ResolverOptions {
  readonly roots: readonly FileRoot[];
  readonly rendered: readonly RenderedFile[];
  /** Bytes of unused files kept loaded. */
  readonly cacheBytes: number;
  /** How long a name's lookup is trusted before the file system is asked again. */
  readonly revalidateMs?: number;
  readonly now?: () => number;
}

interface Loaded {
  readonly realPath: string;
  readonly origin: string;
  readonly data: Buffer;
  netascii: Buffer | undefined;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  users: number;
}

interface Lookup { readonly realPath: string; readonly checkedAt: number }

const NO_RELEASE = (): void => undefined;
/** Lookups remembered at most; past it the memo starts over (names come from clients). */
const MAX_LOOKUPS = 10_000;

function bytesOf(f: Loaded): number {
  return f.data.length + (f.netascii && f.netascii !== f.data ? f.netascii.length : 0);
}

/** RFC 764 netascii: LF becomes CR LF and a bare CR becomes CR NUL. */
export function toNetascii(data: Buffer): Buffer {
  let extra = 0;
  for (let i = 0; i < data.length; i++) if (data[i] === 10 || data[i] === 13) extra++;
  if (!extra) return data;
  const out = Buffer.allocUnsafe(data.length + extra);
  let o = 0;
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (b === 10) { out[o++] = 13; out[o++] = 10; } else if (b === 13) { out[o++] = 13; out[o++] = 0; } else out[o++] = b;
  }
  return out;
}

function notFound(name: string, reason = 'not-found'): Resolution {
  return { ok: false, refusal: { code: ErrorCode.FILE_NOT_FOUND, message: `file not found: ${name}`, reason } };
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export class FileResolver {
  /** Loaded files by real path; Map order is use order (oldest first) for eviction. */
  private readonly files = new Map<string, Loaded>();
  private readonly loading = new Map<string, Promise<Loaded>>();
  /** Recent lookups by requested name. */
  private readonly lookups = new Map<string, Lookup>();
  private readonly realRoots = new Map<string, { real: string | undefined; checkedAt: number }>();
  private loadedBytes = 0;
  private readonly revalidateMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: ResolverOptions) {
    this.revalidateMs = opts.revalidateMs ?? 1000;
    this.now = opts.now ?? (() => performance.now());
  }

  /** Bytes of file data held in memory (in use or cached). */
  get cachedBytes(): number { return this.loadedBytes; }
  get cachedFiles(): number { return this.files.size; }

  async resolve(name: string, clientIp: number, netascii: boolean): Promise<Resolution> {
    for (const r of this.opts.rendered) {
      if (!r.match(name)) continue;
      const data = r.render(name, clientIp);
      if (!data) return notFound(name);
      return { ok: true, file: { data: netascii ? toNetascii(data) : data, origin: r.label, release: NO_RELEASE } };
    }
    const now = this.now();
    const recent = this.lookups.get(name);
    if (recent && now - recent.checkedAt < this.revalidateMs) {
      const loaded = this.files.get(recent.realPath);
      if (loaded) return { ok: true, file: this.acquire(loaded, netascii) };
    }
    for (const root of this.opts.roots) {
      const rootReal = await this.realRoot(root, now);
      if (!rootReal) continue;
      let real: string;
      try {
        real = await fs.realpath(path.join(rootReal, name));
      } catch (e) {
        if (isMissing(e)) continue;
        return { ok: false, refusal: { code: ErrorCode.ACCESS_VIOLATION, message: `access violation: ${name} cannot be read`, reason: 'unreadable' } };
      }
      if (!real.startsWith(rootReal + path.sep)) {
        return { ok: false, refusal: { code: ErrorCode.ACCESS_VIOLATION, message: `access violation: ${name} leads outside the TFTP roots`, reason: 'symlink-escape' } };
      }
      let st: Stats;
      try {
        st = await fs.stat(real);
      } catch (e) {
        if (isMissing(e)) continue;
        throw e;
      }
      if (!st.isFile()) return notFound(name, 'not-a-file');
      const loaded = await this.load(real, root.label, st);
      if (this.lookups.size >= MAX_LOOKUPS) this.lookups.clear();
      this.lookups.set(name, { realPath: real, checkedAt: now });
      return { ok: true, file: this.acquire(loaded, netascii) };
    }
    this.lookups.delete(name);
    return notFound(name);
  }

  private async realRoot(root: FileRoot, now: number): Promise<string | undefined> {
    const known = this.realRoots.get(root.dir);
    if (known && now - known.checkedAt < this.revalidateMs) return known.real;
    let real: string | undefined;
    try { real = await fs.realpath(root.dir); } catch { real = undefined; }
    this.realRoots.set(root.dir, { real, checkedAt: now });
    return real;
  }

  private async load(realPath: string, origin: string, st: Stats): Promise<Loaded> {
    const have = this.files.get(realPath);
    if (have && have.size === st.size && have.mtimeMs === st.mtimeMs && have.ino === st.ino) return have;
    let pending = this.loading.get(realPath);
    if (!pending) {
      pending = fs.readFile(realPath).then((data) => {
        const loaded: Loaded = { realPath, origin, data, netascii: undefined, size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, users: 0 };
        const old = this.files.get(realPath);
        // Transfers still sending the old version keep their Buffer; the cache forgets it.
        if (old) { this.files.delete(realPath); this.loadedBytes -= bytesOf(old); }
        this.files.set(realPath, loaded);
        this.loadedBytes += data.length;
        // No eviction here: the caller is about to use it; releases evict.
        return loaded;
      }).finally(() => this.loading.delete(realPath));
      this.loading.set(realPath, pending);
    }
    return pending;
  }

  private acquire(loaded: Loaded, netascii: boolean): ResolvedFile {
    loaded.users++;
    // Most recently used goes to the end of the Map.
    if (this.files.get(loaded.realPath) === loaded) { this.files.delete(loaded.realPath); this.files.set(loaded.realPath, loaded); }
    let data = loaded.data;
    if (netascii) {
      if (!loaded.netascii) {
        loaded.netascii = toNetascii(loaded.data);
        if (loaded.netascii !== loaded.data && this.files.get(loaded.realPath) === loaded) this.loadedBytes += loaded.netascii.length;
      }
      data = loaded.netascii;
    }
    let released = false;
    return {
      data,
      origin: loaded.origin,
      release: () => {
        if (released) return;
        released = true;
        loaded.users--;
        this.evict();
      },
    };
  }

  /** Drops unused files, oldest use first, until the unused ones fit the cache. */
  private evict(): void {
    if (this.loadedBytes <= this.opts.cacheBytes) return;
    for (const [p, f] of this.files) {
      if (this.loadedBytes <= this.opts.cacheBytes) break;
      if (f.users > 0) continue;
      this.files.delete(p);
      this.loadedBytes -= bytesOf(f);
    }
  }
}
