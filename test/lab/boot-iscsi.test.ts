/**
 * A real boot with the root disk over iSCSI: `bootherd lab up --iscsi` starts
 * a tgtd in the head namespace, and bootherd's tgt backend exports each node's
 * copy of the lab's golden disk. A BIOS VM (SeaBIOS, the e1000's iPXE ROM,
 * TCG) boots n001: its iPXE script (profile iscsi-root, `boot: kernel`) sets
 * the node's initiator name and puts dracut's iSCSI arguments on the kernel
 * line; the init logs in with open-iscsi's iscsistart, mounts the LUN and
 * switch_roots to it, and from there shows that / is the iSCSI disk holding
 * the golden image's marker, runs the usual checks and calls back "booted".
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { LAB_GOLDEN_MARKER, LAB_INITRD, LAB_ISCSI_INITRD, labNode } from '../../src/lab/cluster.ts';
import { Lab } from '../../src/lab/netns.ts';
import { headJson } from '../../src/lab/running.ts';
import type { IscsiStatus } from '../../src/services/iscsi/service.ts';
import { assertNodeBoot } from '../helpers/lab-boot-checks.ts';
import { labBootForTest, labUpForTest } from '../helpers/lab-vm.ts';

t.setTimeout(8 * 60_000);

const TARGETS = 'iqn.2024-01.test.lab.bootherd:';
const INITIATORS = 'iqn.2024-01.test.lab:';

t.test('BIOS: n001 boots with its root disk over iSCSI from bootherd\'s tgt backend', async (t) => {
  const state = await labUpForTest(t, 'ls', 2, ['--iscsi']);
  t.ok(state.tgtd, 'lab up --iscsi started a tgtd in the head namespace');
  const iscsi = (await headJson<{ services: { iscsi: IscsiStatus } }>(state, ['status'])).services.iscsi;
  t.match(iscsi, { available: true, backend: 'tgt', portal: '198.18.0.1:3260', lun: 1 }, 'bootherd\'s iSCSI is on, through tgt');
  t.same(iscsi.exports.map((e) => [e.node, e.state]), [['n001', 'exported'], ['n002', 'exported']], 'every node\'s disk is exported');

  // The script n001's iPXE gets, fetched as iPXE does.
  const n001 = labNode(0);
  const script = Lab.adopt(state.lab).run(state.lab.head.ns, 'curl', ['-sf', `http://198.18.0.1/boot/${n001.mac.replace(/:/g, '-')}.ipxe`]).stdout;
  t.match(script, new RegExp(`^set initiator-iqn ${INITIATORS}n001$`, 'm'), 'the script sets n001\'s initiator name');
  t.match(script, /^goto kernel$/m, 'and boots the kernel (boot: kernel)');
  t.match(script, ` rd.iscsi.initiator=${INITIATORS}n001 netroot=iscsi:\${username}:\${password}:\${reverse-username}:\${reverse-password}@198.18.0.1::3260:1:${TARGETS}n001 `, 'whose command line names the root, with iPXE\'s CHAP settings for dracut');
  t.notMatch(script, /^set (username|password|reverse-username|reverse-password) /m, 'asked from another address (the head\'s), the script holds no CHAP lines');
  t.match(script, `initrd --name ${LAB_ISCSI_INITRD} `, 'with the iSCSI initrd');
  t.notMatch(script, /^sanboot /m);

  const { run, report } = await labBootForTest(state, ['--firmware', 'bios', '--nic', 'e1000', '--node', n001.name], 'iscsi-n001');
  t.equal(run.code, 0, 'lab boot exits 0', { stderr: run.stderr, problems: report?.problems });
  const r = report!;
  t.ok(r.ok, 'the report passes', { problems: r.problems, console: r.consoleTail });

  // The marker is in the golden disk only: neither initrd has it, so the VM can only have read it from the LUN.
  const marker = readFileSync(path.join(state.imageDir, LAB_GOLDEN_MARKER), 'utf8').trim();
  t.match(marker, /^bootherd lab golden image [0-9a-f]{16}$/);
  for (const initrd of [LAB_INITRD, LAB_ISCSI_INITRD]) {
    t.notOk(gunzipSync(readFileSync(path.join(state.imageDir, initrd))).includes(marker), `${initrd} does not hold the marker`);
  }
  const disk = path.join(state.heads[0]!.stateDir, 'iscsi', 'n001.img');
  t.same(r.iscsi, { target: `${TARGETS}n001`, initiator: `${INITIATORS}n001`, disk, state: 'exported', marker }, 'the report names n001\'s export');
  t.ok(readFileSync(disk).includes(marker), 'n001\'s disk is a copy of the golden image');

  const vm = (stage: string) => r.timeline.find((e) => e.where === 'vm' && e.stage === stage)?.detail;
  t.equal(vm('iscsi'), `${TARGETS}n001 lun 1 /dev/sda from 198.18.0.1:3260 as ${INITIATORS}n001 (mutual CHAP)`, 'the init logged in to n001\'s target as n001 with mutual CHAP (the script its own address got) and found LUN 1\'s disk');
  t.equal(vm('root'), `/ is /dev/sda ext2, iSCSI session ${TARGETS}n001; /etc/bootherd-golden: ${marker}`, 'after switch_root, / is that disk, with the golden image\'s marker');
  // Every other stage, and the head's timeline to "booted", as for any node.
  await assertNodeBoot(t, state, r, n001, false, true);
});
