/**
 * Where TFTP files come from: name confinement, roots in order, symlink
 * escapes, the shared in-memory cache and its eviction, netascii, and the
 * pxelinux.cfg files rendered from the cluster model (live: a node added
 * through the model has its file at once).
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ClusterModel } from '../../src/cluster/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import { confine } from '../../src/services/tftp/handlers/name.ts';
import { PxelinuxConfigs } from '../../src/services/tftp/pxelinux.ts';
import { FileResolver, toNetascii, type Resolution } from '../../src/services/tftp/resolver.ts';
import { MemoryStore } from '../../src/store/memory.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-tftp-resolver-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const first = path.join(dir, 'first');
const second = path.join(dir, 'second');
const outside = path.join(dir, 'outside');
for (const d of [first, second, outside, path.join(first, 'sub'), path.join(second, 'pxelinux.cfg')]) mkdirSync(d, { recursive: true });
writeFileSync(path.join(first, 'a.bin'), 'first a');
writeFileSync(path.join(second, 'a.bin'), 'second a');
writeFileSync(path.join(second, 'b.bin'), 'second b');
writeFileSync(path.join(first, 'sub', 'c.txt'), 'line\nnext\r\n');
writeFileSync(path.join(outside, 'secret'), 'secret');
writeFileSync(path.join(second, 'pxelinux.cfg', 'default'), 'DEFAULT local\n');
symlinkSync(path.join(first, 'a.bin'), path.join(first, 'inside-link'));
symlinkSync(path.join(outside, 'secret'), path.join(first, 'escape-link'));
symlinkSync(outside, path.join(first, 'escape-dir'));

function ok(r: Resolution): { data: Buffer; origin: string; release(): void } {
  if (!r.ok) throw new Error(`expected a file, got ${r.refusal.reason}`);
  return r.file;
}

t.test('names are confined before any file system access', async (t) => {
  const refused: Array<[string, string]> = [
    ['../etc/passwd', 'name-parent'],
    ['a/../../etc/passwd', 'name-parent'],
    ['sub/..', 'name-parent'],
    ['/etc/passwd', 'name-absolute'],
    ['..\\..\\windows\\win.ini', 'name-backslash'],
    ['a\\b', 'name-backslash'],
    ['a\0b', 'name-nul'],
    ['x'.repeat(256), 'name-too-long'],
    ['caf\xe9', 'name-characters'],
    ['tab\there', 'name-characters'],
    ['.', 'name-empty'],
    ['./', 'name-empty'],
  ];
  for (const [name, reason] of refused) {
    const c = confine(name);
    t.equal(c.ok ? 'accepted' : c.reason, reason, JSON.stringify(name.slice(0, 40)));
  }
  t.same(confine('./sub//c.txt'), { ok: true, name: 'sub/c.txt' }, '. and empty segments are dropped');
  t.same(confine('x'.repeat(255)), { ok: true, name: 'x'.repeat(255) }, '255 bytes is still fine');
  t.same(confine('pxelinux.cfg/01-52-54-00-00-00-01'), { ok: true, name: 'pxelinux.cfg/01-52-54-00-00-00-01' });
});

t.test('roots are searched in order; symlinks may not lead out', async (t) => {
  const r = new FileResolver({ roots: [{ label: 'first', dir: first }, { label: 'second', dir: second }, { label: 'missing', dir: path.join(dir, 'nope') }], rendered: [], cacheBytes: 1 << 20 });
  const a = ok(await r.resolve('a.bin', 0, false));
  t.equal(a.data.toString(), 'first a', 'the first root wins');
  t.equal(a.origin, 'first');
  t.equal(ok(await r.resolve('b.bin', 0, false)).data.toString(), 'second b', 'then the next');
  t.equal(ok(await r.resolve('inside-link', 0, false)).data.toString(), 'first a', 'a link inside the root is followed');
  const refusal = async (name: string) => { const x = await r.resolve(name, 0, false); return x.ok ? 'served' : `${x.refusal.code} ${x.refusal.reason}`; };
  t.equal(await refusal('escape-link'), '2 symlink-escape', 'a link to a file outside is an access violation');
  t.equal(await refusal('escape-dir/secret'), '2 symlink-escape', 'so is a path through a linked directory');
  t.equal(await refusal('nothing.bin'), '1 not-found');
  t.equal(await refusal('sub'), '1 not-a-file', 'directories are not files');
  t.equal(await refusal('a.bin/x'), '1 not-found', 'a file used as a directory');
});

t.test('files are read once and shared; changes are seen after revalidation; unused files are evicted', async (t) => {
  let now = 0;
  const r = new FileResolver({ roots: [{ label: 'first', dir: first }, { label: 'second', dir: second }], rendered: [], cacheBytes: 10, revalidateMs: 1000, now: () => now });
  const [x, y] = await Promise.all([r.resolve('b.bin', 0, false), r.resolve('b.bin', 0, false)]);
  t.equal(ok(x).data, ok(y).data, 'concurrent transfers share one Buffer');
  t.equal(r.cachedFiles, 1);
  writeFileSync(path.join(second, 'b.bin'), 'second b, changed');
  t.equal(ok(await r.resolve('b.bin', 0, false)).data.toString(), 'second b', 'within the revalidation interval the lookup is trusted');
  now = 1500;
  const z = ok(await r.resolve('b.bin', 0, false));
  t.equal(z.data.toString(), 'second b, changed', 'after it, the change is seen');
  t.equal(ok(x).data.toString(), 'second b', 'a transfer of the old version keeps its bytes');
  ok(x).release();
  ok(y).release();
  t.equal(r.cachedFiles, 1, 'the new version is in use');
  t.ok(r.cachedBytes > 10, 'files in use are kept beyond the cache size');
  z.release();
  t.equal(r.cachedFiles, 0, 'released and over the cache size: evicted');
  t.equal(r.cachedBytes, 0);
  z.release();
  t.equal(r.cachedBytes, 0, 'a second release changes nothing');
});

t.test('netascii', async (t) => {
  t.same(toNetascii(Buffer.from('a\nb\r\nc\r')), Buffer.from('a\r\nb\r\0\r\nc\r\0'));
  const plain = Buffer.from('no line ends');
  t.equal(toNetascii(plain), plain, 'nothing to convert: the same buffer');
  const r = new FileResolver({ roots: [{ label: 'first', dir: first }], rendered: [], cacheBytes: 1 << 20 });
  t.equal(ok(await r.resolve('sub/c.txt', 0, true)).data.toString('latin1'), 'line\r\nnext\r\0\r\n');
  t.equal(ok(await r.resolve('sub/c.txt', 0, false)).data.toString('latin1'), 'line\nnext\r\n', 'octet is untouched');
});

t.test('pxelinux.cfg/01-<mac> follows the cluster model', async (t) => {
  const config = parseConfig(`
head: { address: 198.18.0.1 }
subnets: [ { network: 198.18.0.0/24 } ]
profiles:
  compute: { kernel: vmlinuz-6.1, initrd: [initrd.img, extra.img], cmdline: console=ttyS0 quiet }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11, profile: compute }
`, '<test>');
  const model = new ClusterModel(config, new MemoryStore());
  const px = new PxelinuxConfigs(model, 'http://198.18.0.1');
  const r = new FileResolver({ roots: [{ label: 'second', dir: second }], rendered: [px], cacheBytes: 1 << 20 });
  const n001 = ok(await r.resolve('pxelinux.cfg/01-52-54-00-00-00-01', 0, false));
  t.equal(n001.origin, 'pxelinux');
  t.equal(n001.data.toString(), [
    '# Rendered by bootherd for node n001 (profile compute) from the cluster model.',
    'DEFAULT n001',
    'PROMPT 0',
    'TIMEOUT 0',
    'LABEL n001',
    '  KERNEL http://198.18.0.1/files/vmlinuz-6.1',
    '  INITRD http://198.18.0.1/files/initrd.img,http://198.18.0.1/files/extra.img',
    '  APPEND console=ttyS0 quiet',
    '',
  ].join('\n'));
  t.ok((await r.resolve('pxelinux.cfg/01-52-54-00-00-00-01'.toUpperCase().replace('PXELINUX.CFG', 'pxelinux.cfg'), 0, false)).ok, 'upper-case MACs too');
  t.equal((await r.resolve('pxelinux.cfg/01-52-54-00-00-00-02', 0, false)).ok, false, 'an unknown MAC is not rendered');

  await model.addNode({ name: 'n002', macs: ['52:54:00:00:00:02'], ip: '198.18.0.12' });
  const n002 = ok(await r.resolve('pxelinux.cfg/01-52-54-00-00-00-02', 0, false));
  t.match(n002.data.toString(), /LABEL n002\n  KERNEL http:\/\/198\.18\.0\.1\/files\/vmlinuz\n/, 'a node added through the model has its file at once');
  await model.removeNode('n002');
  t.equal((await r.resolve('pxelinux.cfg/01-52-54-00-00-00-02', 0, false)).ok, false, 'and loses it when removed');
  t.equal(ok(await r.resolve('pxelinux.cfg/default', 0, false)).data.toString(), 'DEFAULT local\n', 'other names under pxelinux.cfg come from the roots');
});
