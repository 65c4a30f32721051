/**
 * Where a root disk may come from. A golden image (`root.image`) must lie in
 * `iscsi.images` and a block device (`root.device`) must match one of
 * `iscsi.devices`: anything else would let whoever can change a node (the
 * API) copy or export any file of the head. Checked twice: lexically (the
 * cluster file at load, an API change before it is stored) and, before a disk
 * is made or exported, on the real path (symlinks resolved): an image must be
 * a regular file inside the real images directory, a device a block device.
 */
import { realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Config } from './load.ts';
import type { RootDisk } from '../cluster/types.ts';

export interface RootDiskPlaces {
  /** Absolute directory golden images must lie in. */
  readonly imagesDir: string;
  /** Absolute patterns devices must match (`*`: any characters but `/`). */
  readonly devices: readonly string[];
  /** Directory relative image paths are resolved from (the cluster file's). */
  readonly baseDir: string;
}

export function rootDiskPlacesOf(config: Pick<Config, 'source' | 'stateDir' | 'iscsi'>): RootDiskPlaces {
  const baseDir = config.source.startsWith('<') ? process.cwd() : path.dirname(config.source);
  const images = config.iscsi.images;
  return {
    imagesDir: images ? path.resolve(baseDir, images) : path.join(config.stateDir, 'images'),
    devices: config.iscsi.devices,
    baseDir,
  };
}

/** A root disk path refused: `field` is `image` or `device` (of `root:`). */
export class RootDiskPathError extends Error {
  constructor(readonly field: 'image' | 'device', message: string) {
    super(message);
    this.name = 'RootDiskPathError';
  }
}

function inside(dir: string, p: string): boolean {
  const rel = path.relative(dir, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

function patternRegex(pattern: string): RegExp {
  const body = pattern.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*');
  return new RegExp(`^${body}$`);
}

/** The device path of a node (`{node}` replaced); profiles are checked with a stand-in name. */
export function devicePath(root: RootDisk, node: string): string {
  return root.device!.replaceAll('{node}', node);
}

/**
 * Lexical checks (`..` resolved, no file system): the image under the images
 * directory, the device matching a pattern. Throws RootDiskPathError.
 */
export function checkRootDiskPaths(places: RootDiskPlaces, root: RootDisk, node = 'node'): void {
  if (root.image !== undefined) {
    const image = path.resolve(places.baseDir, root.image);
    if (!inside(places.imagesDir, image)) {
      throw new RootDiskPathError('image', `${image} is outside the images directory ${places.imagesDir}; put the golden image there or set iscsi.images in the cluster file`);
    }
  }
  if (root.disk === 'block' && root.device !== undefined) checkDevicePattern(places, devicePath(root, node));
}

function checkDevicePattern(places: RootDiskPlaces, device: string): string {
  const resolved = path.resolve('/', device);
  if (!places.devices.some((p) => patternRegex(p).test(resolved))) {
    throw new RootDiskPathError('device', places.devices.length
      ? `${resolved} matches none of iscsi.devices (${places.devices.join(', ')}); use such a device or add a pattern to iscsi.devices in the cluster file`
      : `${resolved} is not allowed: iscsi.devices is empty; list the devices nodes may have in the cluster file, like iscsi.devices: ["/dev/vg0/*"]`);
  }
  return resolved;
}

/** The golden image's real path, if it is a regular file inside the real images directory; else RootDiskPathError. */
export function confinedImage(places: RootDiskPlaces, image: string): string {
  const lexical = path.resolve(places.baseDir, image);
  let real: string;
  let dir: string;
  try {
    dir = realpathSync(places.imagesDir);
    real = realpathSync(lexical);
  } catch (e) {
    throw new RootDiskPathError('image', `golden image ${lexical}: ${(e as Error).message}`);
  }
  if (!inside(dir, real)) throw new RootDiskPathError('image', `golden image ${lexical} leads to ${real}, outside the images directory ${dir}; put the image itself there`);
  if (!statSync(real).isFile()) throw new RootDiskPathError('image', `golden image ${lexical} is not a regular file`);
  return real;
}

/** A node's device, if it matches iscsi.devices and (symlinks resolved) is a block device; else RootDiskPathError. */
export function confinedDevice(places: RootDiskPlaces, root: RootDisk, node: string): string {
  const device = checkDevicePattern(places, devicePath(root, node));
  let isBlock: boolean;
  try {
    isBlock = statSync(device).isBlockDevice();
  } catch (e) {
    throw new RootDiskPathError('device', `block device ${device} for node ${node}: ${(e as Error).message}`);
  }
  if (!isBlock) throw new RootDiskPathError('device', `${device} for node ${node} is not a block device; disk: block exports block devices only (use disk: copy for an image file)`);
  return device;
}
