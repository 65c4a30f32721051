/**
 * Per-node root disks: each node gets its own copy of the golden image,
 * made on its first export and kept until asked (iscsi.removeDisks). The copy
 * is a reflink where the filesystem can (btrfs, XFS: instant, copy-on-write),
 * else a sparse copy; it is written under a temporary name and renamed, so a
 * copy cut short by a crash is never exported.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, rename, stat, truncate, unlink } from 'node:fs/promises';
import path from 'node:path';
import { execRunner, runChecked, type Runner } from './backend.ts';
import { RootDiskPathError } from '../../config/root-disk.ts';
import type { DesiredExport } from './state.ts';

const run: Runner = execRunner({ cp: 'coreutils' });

export class DiskError extends Error {
  constructor(readonly node: string, message: string) {
    super(message);
    this.name = 'DiskError';
  }
}

/**
 * Makes sure the export's disk exists; returns true when it was created now.
 * `image` gives the golden image's real path (confined to iscsi.images) or
 * throws; `checkDevice` throws unless a block export's device is allowed.
 */
export async function ensureDisk(e: DesiredExport, image: (() => string) | undefined, size: number | undefined, checkDevice: () => void): Promise<boolean> {
  const target = e.disk.path;
  if (e.disk.kind === 'block') {
    if (!existsSync(target)) throw new DiskError(e.node, `block device ${target} for node ${e.node} does not exist`);
    confined(e, checkDevice);
    return false;
  }
  if (existsSync(target)) return false;
  if (!image) throw new DiskError(e.node, `node ${e.node} has no disk at ${target} and its root: names no image to copy`);
  return copyImage(e, confined(e, image), size);
}

function confined<T>(e: DesiredExport, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof RootDiskPathError) throw new DiskError(e.node, `node ${e.node}: root.${err.field}: ${err.message}`);
    throw err;
  }
}

async function copyImage(e: DesiredExport, image: string, size: number | undefined): Promise<boolean> {
  const target = e.disk.path;
  let imageSize: number;
  try {
    const s = statSync(image);
    if (!s.isFile()) throw new Error('not a regular file');
    imageSize = s.size;
  } catch (err) {
    throw new DiskError(e.node, `golden image ${image} for node ${e.node}: ${(err as Error).message}`);
  }
  await mkdir(path.dirname(target), { recursive: true });
  const partial = `${target}.partial`;
  try {
    await runChecked(run, 'cp', ['--reflink=auto', '--sparse=always', '--', image, partial]);
    if (size !== undefined && size > imageSize) await truncate(partial, size);
    await rename(partial, target);
  } catch (err) {
    await unlink(partial).catch(() => undefined);
    throw new DiskError(e.node, `copying ${image} to ${target} for node ${e.node} failed: ${(err as Error).message}`);
  }
  return true;
}

/** Removes a per-node copy, only if it lies in the disks directory (never a device or a file elsewhere). */
export async function removeDisk(disksDir: string, file: string): Promise<boolean> {
  const rel = path.relative(disksDir, file);
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return false;
  try {
    if (!(await stat(file)).isFile()) return false;
    await unlink(file);
    return true;
  } catch {
    return false;
  }
}
