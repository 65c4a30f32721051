/**
 * Where root disks may come from (src/config/root-disk.ts): a golden image only
 * from iscsi.images, a device only matching iscsi.devices, checked lexically
 * (cluster file, API) and on the real path (symlinks resolved) before a disk
 * is copied or exported. The attack: an API client naming /etc/shadow as a
 * node's image (copied into its disk) or as its block device (exported read/write).
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { checkRootDiskPaths, confinedDevice, confinedImage, RootDiskPathError, type RootDiskPlaces } from '../../src/config/root-disk.ts';
import type { RootDisk } from '../../src/cluster/types.ts';
import { startHttpServer } from '../helpers/http-server.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-confine-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const images = path.join(dir, 'images');
mkdirSync(images);
writeFileSync(path.join(images, 'golden.img'), Buffer.alloc(4096));
symlinkSync('/etc/passwd', path.join(images, 'passwd.img'));
mkdirSync(path.join(dir, 'dev'));
writeFileSync(path.join(dir, 'dev', 'root-n001'), 'a regular file, not a device');
writeFileSync(path.join(dir, 'dev', 'root-n009'), 'a regular file, not a device');
/** A block device of this machine, for the one case that must pass (loop devices are usually there). */
const blockDevice = readdirSync('/dev').map((f) => `/dev/${f}`).find((f) => { try { return statSync(f).isBlockDevice(); } catch { return false; } });

const places: RootDiskPlaces = { imagesDir: images, devices: [`${dir}/dev/*`, '/dev/loop*'], baseDir: dir };
const copy = (image: string): RootDisk => ({ kind: 'iscsi', disk: 'copy', image, boot: 'sanboot' });
const block = (device: string): RootDisk => ({ kind: 'iscsi', disk: 'block', device, boot: 'sanboot' });
const refusal = (f: () => unknown): string => {
  try { f(); } catch (e) { if (e instanceof RootDiskPathError) return `${e.field}: ${e.message}`; throw e; }
  return '(allowed)';
};

t.test('lexical: images under iscsi.images, devices matching iscsi.devices, ".." resolved first', async (t) => {
  t.equal(refusal(() => checkRootDiskPaths(places, copy('images/golden.img'))), '(allowed)', 'relative to the cluster file');
  t.match(refusal(() => checkRootDiskPaths(places, copy('/etc/shadow'))), /^image: \/etc\/shadow is outside the images directory .*images; put the golden image there or set iscsi\.images/);
  t.match(refusal(() => checkRootDiskPaths(places, copy('images/../../../etc/shadow'))), /^image: \/etc\/shadow is outside/, '".." out of the directory');
  t.match(refusal(() => checkRootDiskPaths(places, copy('images'))), /^image: .* is outside/, 'the directory itself is no image');
  t.equal(refusal(() => checkRootDiskPaths(places, block('/dev/loop{node}'), 'n001')), '(allowed)');
  t.match(refusal(() => checkRootDiskPaths(places, block('/etc/shadow'), 'n001')), /^device: \/etc\/shadow matches none of iscsi\.devices \(.*\); use such a device or add a pattern to iscsi\.devices/);
  t.match(refusal(() => checkRootDiskPaths(places, block('/dev/loop0/../sda'), 'n001')), /^device: \/dev\/sda matches none/, '".." resolved before matching');
  t.match(refusal(() => checkRootDiskPaths(places, block(`${dir}/dev/a/b`), 'n001')), /^device: .* matches none/, '"*" stays within one path segment');
  t.match(refusal(() => checkRootDiskPaths({ ...places, devices: [] }, block('/dev/vg0/x'), 'n001')), /^device: \/dev\/vg0\/x is not allowed: iscsi\.devices is empty; list the devices nodes may have in the cluster file, like iscsi\.devices: \["\/dev\/vg0\/\*"\]/);
});

t.test('real paths: a symlink out of the images directory, a regular file as a device', async (t) => {
  t.equal(confinedImage(places, 'images/golden.img'), path.join(images, 'golden.img'));
  t.match(refusal(() => confinedImage(places, 'images/passwd.img')), /^image: golden image .*passwd\.img leads to \/etc\/passwd, outside the images directory/);
  t.match(refusal(() => confinedImage(places, 'images/missing.img')), /^image: golden image .*missing\.img: ENOENT/);
  t.match(refusal(() => confinedDevice(places, block(`${dir}/dev/root-{node}`), 'n001')), /^device: .*root-n001 for node n001 is not a block device; disk: block exports block devices only/);
  t.match(refusal(() => confinedDevice(places, block('/etc/shadow'), 'n001')), /^device: \/etc\/shadow matches none/);
  if (blockDevice?.startsWith('/dev/loop')) t.equal(confinedDevice(places, block(blockDevice), 'n001'), blockDevice, 'an allowed block device');
});

t.test('the cluster file: each refusal names its field and line', async (t) => {
  const text = (root: string) => `
cluster: { domain: lab.test }
head: { address: 198.18.0.1 }
state: /var/lib/bootherd
subnets: [{ network: 198.18.0.0/24 }]
iscsi: { devices: ['/dev/vg0/*'] }
profiles:
  p: { kernel: k, root: ${root} }
`;
  const errorOf = (root: string) => { try { parseConfig(text(root), '/etc/bootherd/cluster.yaml'); } catch (e) { if (e instanceof ConfigError) return e.message; throw e; } return '(no error)'; };
  t.match(errorOf('{ kind: iscsi, image: /etc/shadow }'), /cluster\.yaml:8 profiles\.p\.root\.image: \/etc\/shadow is outside the images directory \/var\/lib\/bootherd\/images/, 'default images directory: <state>/images');
  t.equal(errorOf('{ kind: iscsi, image: /var/lib/bootherd/images/rocky.img }'), '(no error)');
  t.match(errorOf("{ kind: iscsi, disk: block, device: '/srv/{node}.img' }"), /profiles\.p\.root\.device: \/srv\/node\.img matches none of iscsi\.devices \(\/dev\/vg0\/\*\)/);
  t.equal(errorOf("{ kind: iscsi, disk: block, device: '/dev/vg0/root-{node}' }"), '(no error)');
  t.match(errorOf('{ kind: iscsi, image: x }').replace(text(''), ''), /iscsi|image/);
});

t.test('the API refuses an image or device outside the allowed places with 400 naming the field', async (t) => {
  const s = await startHttpServer(t, { extra: `iscsi: { enabled: false, images: ${images}, devices: ['${dir}/dev/*'] }` });
  const add = async (root: Record<string, unknown>) => {
    const res = await s.authed('/api/v1/nodes', { method: 'POST', json: { name: 'n009', macs: '52:54:00:00:00:09', ip: '198.18.0.19', root: { kind: 'iscsi', ...root } } });
    return { status: res.status, body: (await res.json()) as { field?: string; message?: string } };
  };
  for (const [what, root, field, message] of [
    ['a root-only file as the image', { image: '/etc/shadow' }, 'root.image', /\/etc\/shadow is outside the images directory/],
    ['".." out of the images directory', { image: `${images}/../../../etc/shadow` }, 'root.image', /\/etc\/shadow is outside the images directory/],
    ['a symlink in the images directory to /etc/passwd', { image: `${images}/passwd.img` }, 'root.image', /leads to \/etc\/passwd, outside the images directory/],
    ['a root-only file as the device', { disk: 'block', device: '/etc/shadow' }, 'root.device', /\/etc\/shadow matches none of iscsi\.devices/],
    ['a regular file matching the pattern', { disk: 'block', device: `${dir}/dev/root-{node}` }, 'root.device', /is not a block device/],
  ] as const) {
    const r = await add(root);
    if (r.status !== 400) t.comment(JSON.stringify(r));
    t.equal(r.status, 400, `${what}: 400`);
    t.equal(r.body.field, field, `${what}: names ${field}`);
    t.match(r.body.message, message, what);
  }
  t.equal((await s.authed('/api/v1/nodes/n009')).status, 404, 'none of them was stored');
  t.equal((await add({ image: `${images}/golden.img` })).status, 201, 'an image in the images directory is taken');
  const patched = await s.authed('/api/v1/nodes/n009', { method: 'PATCH', json: { root: { kind: 'iscsi', image: '/etc/shadow' } } });
  t.equal(patched.status, 400, 'a change to a refused image too');
});
