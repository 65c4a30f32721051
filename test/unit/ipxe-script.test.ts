/**
 * The iPXE script renderer: a known node's script, the unknown-MAC script,
 * several initrds (UEFI needs initrd=<name> for each), a broken template;
 * nodes with a root disk (sanboot, kernel, the disk unavailable), and the
 * server's wiring of the iSCSI service into the scripts it serves.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderNodeScript, renderTemplate, TemplateError, type RootDiskBoot, type RootDiskProvider } from '../../src/boot/ipxe-script.ts';
import { ClusterModel } from '../../src/cluster/model.ts';
import { parseConfig } from '../../src/config/load.ts';
import { IpxeScripts } from '../../src/services/tftp/ipxe-scripts.ts';
import { ipToInt } from '../../src/net/ipv4.ts';
import { MemoryStore } from '../../src/store/memory.ts';
import { startHttpServer } from '../helpers/http-server.ts';

const BASE = 'http://198.18.0.1';

function model(extra = ''): ClusterModel {
  const config = parseConfig(`
cluster: { domain: lab.test }
head: { address: 198.18.0.1 }
subnets: [{ network: 198.18.0.0/24 }]
iscsi: { images: . }
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

/**
 * What iPXE runs when every command succeeds: from the top, following each
 * `goto`, up to the command that hands over (boot, sanboot) or chains away.
 * Comments, labels and `|| goto failed` tails are left out.
 */
function executed(script: string): string[] {
  const lines = script.split('\n');
  const out: string[] = [];
  for (let i = 1, steps = 0; i < lines.length && steps < 200; i++, steps++) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith('#') || line.startsWith(':')) continue;
    const go = /^goto (\S+)$/.exec(line);
    if (go) {
      i = lines.indexOf(`:${go[1]}`);
      if (i < 0) throw new Error(`goto ${go[1]}: no such label`);
      continue;
    }
    const command = line.replace(/ \|\| goto failed$/, '');
    out.push(command);
    if (/^(boot|sanboot|chain)\b/.test(command)) break;
  }
  return out;
}

const IQN = 'iqn.2024-01.test.lab:n003';
const ROOT_PATH = 'iscsi:198.18.0.1::3260:1:iqn.2024-01.test.lab.bootherd:n003';
const KERNEL_ARGS = `ip=dhcp rd.iscsi.initiator=${IQN} netroot=${ROOT_PATH}`;
const ISCSI_NODES = `
  - { name: n003, macs: 52:54:00:00:00:03, ip: 198.18.0.13, profile: bare, root: { kind: iscsi, image: golden.img } }
  - { name: n004, macs: 52:54:00:00:00:04, ip: 198.18.0.14, profile: bare, root: { kind: iscsi, image: golden.img, boot: kernel } }`;
const CHAP = { username: 'bootherd-n003-1', password: 'SecretOfTheNode12345678', reverseUsername: 'bootherd-n003-1-target', reversePassword: 'SecretOfTheTarget1234567' };
const available = (boot: 'sanboot' | 'kernel'): RootDiskBoot => ({ available: true, boot, initiatorIqn: IQN, rootPath: ROOT_PATH, kernelArgs: KERNEL_ARGS, chap: CHAP });
const CHAP_LINES = [`set username ${CHAP.username}`, `set password ${CHAP.password}`, `set reverse-username ${CHAP.reverseUsername}`, `set reverse-password ${CHAP.reversePassword}`];
const booted = (mac: string) => `bootherd_booted=${BASE}/boot/${mac}/booted`;
const failedPath = (name: string, mac: string) => [
  `echo bootherd: booting ${name} failed; retrying in 10 seconds (Ctrl-B for the iPXE shell)`,
  'prompt --key 0x02 --timeout 10000 && shell ||',
  'dhcp && chain --replace ${filename} ||',
  `chain --replace ${BASE}/boot/${mac}.ipxe`,
];

t.test('root disks: what the node\'s script runs, case by case', async (t) => {
  const m = model(ISCSI_NODES);
  const cases: Array<{ name: string; mac: string; provider?: RootDiskProvider; runs: string[] }> = [
    {
      name: 'no root: the profile\'s kernel as before, no initiator name',
      mac: '52:54:00:00:00:02',
      provider: () => available('sanboot'),
      runs: [
        'echo bootherd: booting n002 (198.18.0.12, 52:54:00:00:00:02) with profile bare',
        `kernel --name vmlinuz ${BASE}/files/vmlinuz ${booted('52-54-00-00-00-02')}`,
        'boot',
      ],
    },
    {
      name: 'iSCSI, boot: sanboot: the initiator name, then sanboot of the root path; no kernel',
      mac: '52:54:00:00:00:03',
      provider: () => available('sanboot'),
      runs: [
        'echo bootherd: booting n003 (198.18.0.13, 52:54:00:00:00:03) with profile bare',
        `set initiator-iqn ${IQN}`,
        `echo bootherd: n003 boots from its iSCSI disk ${ROOT_PATH}`,
        `sanboot ${ROOT_PATH}`,
      ],
    },
    {
      name: 'iSCSI, boot: kernel: the initiator name, and the root\'s kernel arguments on the kernel line',
      mac: '52:54:00:00:00:04',
      provider: () => available('kernel'),
      runs: [
        'echo bootherd: booting n004 (198.18.0.14, 52:54:00:00:00:04) with profile bare',
        `set initiator-iqn ${IQN}`,
        `kernel --name vmlinuz ${BASE}/files/vmlinuz ${KERNEL_ARGS} ${booted('52-54-00-00-00-04')}`,
        'boot',
      ],
    },
    {
      name: 'iSCSI off: the script says why and takes the failed path; nothing boots',
      mac: '52:54:00:00:00:03',
      provider: () => ({ available: false, reason: 'iSCSI is off (tgt: tgtd is not answering)' }),
      runs: [
        'echo bootherd: booting n003 (198.18.0.13, 52:54:00:00:00:03) with profile bare',
        'echo bootherd: not booting n003: its iSCSI root disk is not available: iSCSI is off (tgt: tgtd is not answering); it boots once the disk is there',
        ...failedPath('n003', '52-54-00-00-00-03'),
      ],
    },
    {
      name: 'the node\'s disk in error: the same, with the disk\'s problem',
      mac: '52:54:00:00:00:04',
      provider: () => ({ available: false, reason: 'its disk could not be prepared (golden image missing)' }),
      runs: [
        'echo bootherd: booting n004 (198.18.0.14, 52:54:00:00:00:04) with profile bare',
        'echo bootherd: not booting n004: its iSCSI root disk is not available: its disk could not be prepared (golden image missing); it boots once the disk is there',
        ...failedPath('n004', '52-54-00-00-00-04'),
      ],
    },
    {
      name: 'no provider (a renderer without an iSCSI service): the same, never the kernel',
      mac: '52:54:00:00:00:03',
      runs: [
        'echo bootherd: booting n003 (198.18.0.13, 52:54:00:00:00:03) with profile bare',
        'echo bootherd: not booting n003: its iSCSI root disk is not available: no iSCSI service answers for it in this bootherd; it boots once the disk is there',
        ...failedPath('n003', '52-54-00-00-00-03'),
      ],
    },
    {
      name: 'a provider with no answer for the node: the same',
      mac: '52:54:00:00:00:04',
      provider: () => undefined,
      runs: [
        'echo bootherd: booting n004 (198.18.0.14, 52:54:00:00:00:04) with profile bare',
        'echo bootherd: not booting n004: its iSCSI root disk is not available: no iSCSI service answers for it in this bootherd; it boots once the disk is there',
        ...failedPath('n004', '52-54-00-00-00-04'),
      ],
    },
  ];
  for (const c of cases) {
    const s = renderNodeScript(m, c.mac, BASE, c.provider);
    t.same(executed(s), c.runs, c.name);
    t.notMatch(s, /\{\{/, `${c.name}: no placeholder left`);
    // Not only not run: not there, so no path through the script (a failed command, an edited label) can run it.
    for (const command of ['set initiator-iqn', 'kernel', 'initrd', 'sanboot']) {
      if (!c.runs.some((l) => l.startsWith(`${command} `))) t.notMatch(s, new RegExp(`^${command} `, 'm'), `${c.name}: no ${command} line in the script`);
    }
  }
});

t.test('a node-level root on a profile without one; the provider is asked for that node only', async (t) => {
  const m = model(ISCSI_NODES);
  const asked: string[] = [];
  const provider: RootDiskProvider = (n) => { asked.push(n.name); return available('kernel'); };
  renderNodeScript(m, '52:54:00:00:00:02', BASE, provider);
  renderNodeScript(m, '52:54:00:00:00:99', BASE, provider);
  t.same(asked, [], 'not asked for a node without a root, nor for an unknown MAC');
  t.match(renderNodeScript(m, '52:54:00:00:00:04', BASE, provider), `${KERNEL_ARGS} ${booted('52-54-00-00-00-04')}`);
  t.same(asked, ['n004']);
});

t.test('an old custom template without {{boot_method}} cannot send a root-disk node to its kernel', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-tpl-'));
  writeFileSync(path.join(dir, 'node.ipxe'), '#!ipxe\nkernel {{kernel_url}} {{kernel_args}}\nboot\n');
  const m = model(`${ISCSI_NODES}
http: { templates: ${dir} }`);
  t.throws(() => renderNodeScript(m, '52:54:00:00:00:03', BASE, () => available('sanboot')), /node\.ipxe: n003 needs the sanboot path \(its root disk\), but the template has no \{\{boot_method\}\}/);
  t.throws(() => renderNodeScript(m, '52:54:00:00:00:03', BASE), /n003 needs the no-root path/);
  t.throws(() => renderNodeScript(m, '52:54:00:00:00:04', BASE, () => available('kernel')), /node\.ipxe: n004 logs in to its iSCSI disk with CHAP, but the template has no \{\{chap_username\}\}\/\{\{chap_password\}\} lines/, 'nor boot: kernel without the CHAP lines');
  t.equal(renderNodeScript(m, '52:54:00:00:00:02', BASE), `#!ipxe\nkernel ${BASE}/files/vmlinuz ${booted('52-54-00-00-00-02')}\nboot\n`, 'and nodes without a root are as before');
});

t.test('CHAP lines only in the script asked from the node\'s own address (its reservation)', async (t) => {
  const m = model(ISCSI_NODES);
  for (const boot of ['sanboot', 'kernel'] as const) {
    const mac = boot === 'sanboot' ? '52:54:00:00:00:03' : '52:54:00:00:00:04';
    const ip = boot === 'sanboot' ? '198.18.0.13' : '198.18.0.14';
    const own = renderNodeScript(m, mac, BASE, () => available(boot), ip);
    t.same(executed(own).slice(1, 6), [`set initiator-iqn ${IQN}`, ...CHAP_LINES], `${boot}: the node's own address gets its credentials, before it logs in`);
    for (const other of ['198.18.0.12', '198.18.0.200', '127.0.0.1', '', undefined]) {
      const s = renderNodeScript(m, mac, BASE, () => available(boot), other);
      t.notMatch(s, /^set (username|password|reverse-username|reverse-password) /m, `${boot} from ${other ?? '(unknown)'}: no CHAP line`);
      t.notOk(s.includes(CHAP.password) || s.includes(CHAP.reversePassword), `${boot} from ${other ?? '(unknown)'}: neither secret anywhere`);
      t.equal(s, own.split('\n').filter((l) => !CHAP_LINES.includes(l)).join('\n'), `${boot} from ${other ?? '(unknown)'}: the rest is the same script`);
    }
  }
});

t.test('lines whose placeholders have no value for this machine are dropped, kept where they have', async (t) => {
  const text = 'a {{name}}\nset initiator-iqn {{initiator_iqn}}\nsanboot {{root_path}} || goto failed\necho {{root_problem}}\nz';
  t.equal(renderTemplate('x.ipxe', text, { name: 'n1' }, [], new Set(['initiator_iqn', 'root_path', 'root_problem'])), 'a n1\nz');
  t.equal(renderTemplate('x.ipxe', text, { name: 'n1', initiator_iqn: 'iqn.x', root_path: 'iscsi:h::3260:1:t' }, [], new Set(['root_problem'])), 'a n1\nset initiator-iqn iqn.x\nsanboot iscsi:h::3260:1:t || goto failed\nz');
  t.throws(() => renderTemplate('x.ipxe', text, { name: 'n1' }, []), /unknown placeholder \{\{initiator_iqn\}\}/, 'a placeholder neither given nor omitted is still an error');
});

t.test('the server wires the iSCSI service into the scripts it serves (HTTP), and TFTP takes the same provider', async (t) => {
  const s = await startHttpServer(t, { extra: `iscsi: { enabled: false, images: . }
profiles:
  diskless: { kernel: vmlinuz, root: { kind: iscsi, image: golden.img } }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11, profile: diskless }
  - { name: n002, macs: [52:54:00:00:00:02], ip: 198.18.0.12 }` });
  await s.server.iscsi!.start();
  const off = await (await fetch(`${s.base}/boot/52-54-00-00-00-01.ipxe`)).text();
  t.match(off, 'goto no-root');
  t.match(off, 'echo bootherd: not booting n001: its iSCSI root disk is not available: iSCSI is off (iscsi.enabled is false in the cluster file)');
  t.notMatch(off, /^(kernel|sanboot) /m, 'the no-root script has no boot command at all');
  t.match(await (await fetch(`${s.base}/boot/52-54-00-00-00-02.ipxe`)).text(), /^goto kernel$/m, 'a node without a root boots its kernel');

  const tftp = new IpxeScripts(s.server.model, BASE, () => available('sanboot'));
  t.same(executed(tftp.render('boot/52-54-00-00-00-01.ipxe', ipToInt('198.18.0.12'))!.toString()).slice(-2), [`echo bootherd: n001 boots from its iSCSI disk ${ROOT_PATH}`, `sanboot ${ROOT_PATH}`], 'TFTP: the same script');
  t.notMatch(tftp.render('boot/52-54-00-00-00-01.ipxe', ipToInt('198.18.0.12'))!.toString(), /^set password /m, 'TFTP from another address: no CHAP lines');
  t.same(executed(tftp.render('boot/52-54-00-00-00-01.ipxe', ipToInt('198.18.0.11'))!.toString()).slice(2, 6), CHAP_LINES, 'TFTP from n001\'s own address: its CHAP lines');
});

t.test('telemetry placeholders: the ingest URL, and the token only to the node\'s own address', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-tpl-'));
  writeFileSync(path.join(dir, 'node.ipxe'), '#!ipxe\nset telemetry-url {{telemetry_url}}\nset telemetry-token {{telemetry_token}}\nkernel {{kernel_url}} {{kernel_args}}\nboot\n');
  writeFileSync(path.join(dir, 'discovery.ipxe'), '#!ipxe\nset telemetry-token {{telemetry_token}}\nboot\n');
  const m = model(`http: { templates: ${dir} }`);
  const ingest = { url: BASE, token: 'tok' };
  const own = renderNodeScript(m, '52:54:00:00:00:02', BASE, undefined, '198.18.0.12', ingest);
  t.match(own, `set telemetry-url ${BASE}\nset telemetry-token tok\n`, 'the node itself gets URL and token');
  const other = renderNodeScript(m, '52:54:00:00:00:02', BASE, undefined, '198.18.0.50', ingest);
  t.match(other, `set telemetry-url ${BASE}\nkernel`, 'another address gets the URL');
  t.notMatch(other, /tok/, 'but not the token');
  t.notMatch(renderNodeScript(m, '52:54:00:00:00:02', BASE, undefined, '198.18.0.12'), /telemetry/, 'telemetry off: the lines are left out');
  t.equal(renderNodeScript(m, '52:54:00:00:00:99', BASE, undefined, '198.18.0.99', ingest), '#!ipxe\nboot\n', 'an unknown MAC gets no token');
});
