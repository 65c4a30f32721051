import { z } from 'zod';
import { ipv4, port } from '../fields.ts';

/**
 * RFC 3720 3.2.6.3.1: iqn.<yyyy-mm>.<reversed domain>[:<anything>]. We accept
 * the characters iSCSI names may hold (lowercase letters, digits, - . :).
 */
const IQN_PREFIX = /^iqn\.\d{4}-\d{2}\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[a-z0-9.:-]*)?$/;
const iqnPrefix = z.string({ error: 'expected an IQN prefix like iqn.2024-01.local.cluster.bootherd:' })
  .refine((v) => IQN_PREFIX.test(v) && (v.endsWith(':') || v.endsWith('.')), { error: 'expected an IQN prefix like iqn.2024-01.local.cluster.bootherd: (lowercase, ending in ":" or ".")' });

/** Paths go to targetcli, which splits its command line on spaces: none allowed. */
const diskPath = z.string({ error: 'expected a file path like images/rocky9.img' })
  .min(1, { error: 'expected a file path like images/rocky9.img' })
  .refine((v) => !/\s/.test(v), { error: 'a path for iSCSI must not contain spaces (targetcli splits its arguments on them)' });

/** An absolute device path pattern: `*` stands for any characters but `/`. */
const devicePattern = z.string({ error: 'expected a device pattern like /dev/vg0/*' })
  .refine((v) => v.startsWith('/') && !v.split('/').includes('..') && !/\s/.test(v), { error: 'expected an absolute device pattern like /dev/vg0/* (no "..", no spaces)' });

const SIZE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };
/** Bytes: a number, or text like 512M, 8G, 1T (powers of 1024). */
const size = z.union([z.number().int().positive(), z.string()], { error: 'expected a size like 8G, 512M or a number of bytes' })
  .transform((v, ctx) => {
    if (typeof v === 'number') return v;
    const m = /^(\d+)\s*([kmgt]?)(i?b)?$/i.exec(v.trim());
    if (!m) { ctx.addIssue({ code: 'custom', message: `expected a size like 8G, 512M or a number of bytes, got ${JSON.stringify(v)}` }); return z.NEVER; }
    return Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
  });

/**
 * `root:` of a profile or a node: the node's root disk is exported by the
 * head over iSCSI. `disk: copy` gives every node its own copy of the golden
 * `image` (reflinked where the filesystem can, else a sparse copy), made on
 * first export; `disk: block` exports a block device per node (`device`, with
 * {node} replaced by the node name).
 */
export const rootSection = z.strictObject({
  kind: z.literal('iscsi', { error: 'expected kind: iscsi (the only kind of network root disk so far)' }),
  /** Golden image the per-node copy is made from; relative paths are from the cluster file. */
  image: diskPath.optional(),
  disk: z.enum(['copy', 'block'], { error: 'expected disk: copy (a per-node copy of image) or block (a device per node)' }).default('copy'),
  /** Block device for disk: block, e.g. /dev/vg0/root-{node}. */
  device: diskPath.optional(),
  /** Grow a new per-node copy to this size (the image's own size otherwise). */
  size: size.optional(),
  /** How the node's iPXE script boots it: sanboot (iPXE attaches the disk, iBFT for the OS) or kernel (profile kernel with iSCSI root= parameters). */
  boot: z.enum(['sanboot', 'kernel'], { error: 'expected boot: sanboot or kernel' }).default('sanboot'),
}).superRefine((r, ctx) => {
  if (r.disk === 'copy' && !r.image) ctx.addIssue({ code: 'custom', path: ['image'], message: 'disk: copy needs image: the golden image each node gets a copy of' });
  if (r.disk === 'block' && !r.device) ctx.addIssue({ code: 'custom', path: ['device'], message: 'disk: block needs device: a block device path, {node} is replaced by the node name (e.g. /dev/vg0/root-{node})' });
});

export type RootConfig = z.output<typeof rootSection>;

/** `iscsi:` in the cluster file. */
export const iscsiSection = z.strictObject({
  enabled: z.boolean().default(true),
  /**
   * Which target drives the exports: targetcli (the kernel's LIO target,
   * needs configfs), tgt (the userspace tgtd daemon, through tgtadm), or auto
   * (targetcli where /sys/kernel/config/target exists, else tgt).
   */
  backend: z.enum(['auto', 'targetcli', 'tgt'], { error: 'expected backend: auto, targetcli or tgt' }).default('auto'),
  /** Address the targets listen on (the portal); default: head.address. */
  portal: ipv4.optional(),
  port: port.default(3260),
  /** Directory of the per-node disk copies; default <state>/iscsi. Relative paths are from the cluster file. */
  disks: diskPath.optional(),
  /** The only directory golden images (root.image) may come from; default <state>/images. Relative paths are from the cluster file. */
  images: diskPath.optional(),
  /** Patterns the block devices of disk: block (root.device) must match, * within one path segment, like /dev/vg0/*; default none. */
  devices: z.array(devicePattern, { error: 'expected a list of device patterns like ["/dev/vg0/*"]' }).default([]),
  /** Delete a node's disk copy when its export is removed (default: keep it). */
  removeDisks: z.boolean().default(false),
  /** Targets bootherd owns are named <targetPrefix><node>; default iqn.2024-01.<reversed cluster domain>.bootherd: */
  targetPrefix: iqnPrefix.optional(),
  /** Nodes' initiator names are <initiatorPrefix><node>; default iqn.2024-01.<reversed cluster domain>: */
  initiatorPrefix: iqnPrefix.optional(),
  /** Seconds to wait before retrying a reconcile that failed. */
  retry: z.number({ error: 'expected a number of seconds' }).int().positive().default(60),
  tgt: z.strictObject({
    /** tgtd's management port (tgtd -C N / tgtadm -C N); 0 is tgtd's default. */
    controlPort: z.number({ error: 'expected tgtd\'s control port number 0-32767, like 0' }).int().min(0, { error: 'expected tgtd\'s control port number 0-32767' }).max(32767, { error: 'tgtd takes control ports 0-32767' }).default(0),
  }).prefault({}),
}).prefault({});

export type IscsiConfig = z.output<typeof iscsiSection>;
