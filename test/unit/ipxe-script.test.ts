/**
 * The iPXE script renderer: a known node's script, the unknown-MAC script,
 * several initrds (UEFI needs initrd=<name> for each), a broken template.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderNodeScript, renderTemplate, TemplateError } from '../../src/boot/ipxe-script.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import { MemoryStore } from '../../src/store/memory.ts';

const BASE = 'http://198.18.0.1';

function model(extra = ''): ClusterModel {
  const config = parseConfig(`
cluster: { domain: lab.test }
head: { address: 198.18.0.1 }
subnets: [{ network: 198.18.0.0/24 }]
profiles:
  compute: { kernel: images/vmlinuz-6.1, initrd: [images/initrd.img, ucode.img], cmdline: console=ttyS0 quiet }
  bare: { kernel: vmlinuz }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01, 52:54:00:00:01:01], ip: 198.18.0.11, profile: compute }
  - { name: n002, macs: 52:54:00:00:00:02, ip: 198.18.0.12, profile: bare }
${extra}`, '<test>');
  return new ClusterModel(config, new MemoryStore());
}

t.test('a known node: kernel, every initrd by name, cmdline and the booted call-back', async (t) => {
  const s = renderNodeScript(model(), '52-54-00-00-01-01', BASE);
  t.match(s, /^#!ipxe\n/, 'an iPXE script');
  t.match(s, 'echo bootherd: booting n001 (198.18.0.11, 52:54:00:00:01:01) with profile compute');
  t.match(s, `kernel --name vmlinuz-6.1 ${BASE}/files/images/vmlinuz-6.1 initrd=initrd.img initrd=ucode.img console=ttyS0 quiet bootherd_booted=${BASE}/boot/52-54-00-00-01-01/booted || goto failed`);
  t.match(s, `initrd --name initrd.img ${BASE}/files/images/initrd.img || goto failed\ninitrd --name ucode.img ${BASE}/files/ucode.img || goto failed\n`, 'one initrd line per initrd');
  t.match(s, `chain --replace ${BASE}/boot/52-54-00-00-01-01.ipxe`, 'retries its own exact URL');
  t.notMatch(s, /\{\{/, 'no placeholder left');
});

t.test('a profile without initrd has no initrd line and no initrd= argument', async (t) => {
  const s = renderNodeScript(model(), '52:54:00:00:00:02', BASE);
  t.notMatch(s, /^initrd /m);
  t.match(s, `kernel --name vmlinuz ${BASE}/files/vmlinuz bootherd_booted=${BASE}/boot/52-54-00-00-00-02/booted || goto failed`);
});

t.test('an unknown MAC gets the discovery script, which asks again at its own URL', async (t) => {
  const s = renderNodeScript(model(), '52:54:00:00:00:99', BASE);
  t.match(s, 'this machine (52:54:00:00:00:99) is not a node of lab.test yet');
  t.match(s, `chain --replace ${BASE}/boot/52-54-00-00-00-99.ipxe || goto retry`);
});

t.test('the unknown template is configurable, and a node added later gets its own script at once', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-tpl-'));
  writeFileSync(path.join(dir, 'node.ipxe'), '#!ipxe\nkernel {{kernel_url}} {{kernel_args}}\nboot\n');
  writeFileSync(path.join(dir, 'default.ipxe'), '#!ipxe\nkernel {{kernel_url}} {{kernel_args}}\ninitrd {{initrd_url}}\nboot\n');
  const m = model(`http: { templates: ${dir}, unknownTemplate: default.ipxe }`);
  t.equal(renderNodeScript(m, '52:54:00:00:00:99', BASE), `#!ipxe\nkernel ${BASE}/files/vmlinuz initrd=initrd.img\ninitrd ${BASE}/files/initrd.img\nboot\n`, 'unknown MACs boot the default profile');
  await m.addNode({ name: 'n099', macs: '52:54:00:00:00:99', ip: '198.18.0.99' });
  t.match(renderNodeScript(m, '52:54:00:00:00:99', BASE), `bootherd_booted=${BASE}/boot/52-54-00-00-00-99/booted`, 'now the node template');
});

t.test('an unknown placeholder is an error that names it', async (t) => {
  t.throws(() => renderTemplate('x.ipxe', 'kernel {{kernal_url}}', { kernel_url: 'u' }, []), TemplateError);
  t.throws(() => renderTemplate('x.ipxe', 'kernel {{kernal_url}}', { kernel_url: 'u' }, []), /x\.ipxe: unknown placeholder \{\{kernal_url\}\}/);
  const m = model('http: { unknownTemplate: missing.ipxe }');
  t.throws(() => renderNodeScript(m, '52:54:00:00:00:99', BASE), /missing\.ipxe: cannot read the template/);
});
