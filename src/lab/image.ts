/**
 * The lab node's kernel and initrd, built from Debian packages by
 * scripts/build-lab-image.sh and cached under boot-assets/lab/<key>/.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LAB_INITRD, LAB_KERNEL } from './cluster.ts';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/build-lab-image.sh');

export interface LabImage {
  /** Directory holding vmlinuz and initrd.img: the lab cluster's boot file root. */
  readonly dir: string;
  readonly kernel: string;
  readonly initrd: string;
}

/** Builds the image, or finds it in the cache (a second call is instant). Progress goes to stderr. */
export function labImage(): LabImage {
  let out: string;
  try {
    out = execFileSync('sh', [SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 15 * 60_000 });
  } catch (e) {
    throw new Error(`building the lab kernel and initrd failed (${SCRIPT}): ${(e as Error).message.split('\n')[0]}`);
  }
  const dir = out.trim().split('\n').pop()!;
  return { dir, kernel: path.join(dir, LAB_KERNEL), initrd: path.join(dir, LAB_INITRD) };
}
