/**
 * PXE boot options as real clients see them: ISC dhclient configured to speak
 * like each firmware (option 93 architecture, vendor class PXEClient or
 * HTTPClient, user class iPXE) reads bootherd's reply and writes the boot file
 * it was given into its lease file.
 */
import t from 'tap';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startLabServer } from '../helpers/lab-server.ts';

const KNOWN = '52:54:00:00:00:01';
const UNKNOWN = '52:54:00:00:00:99';

const config = (state: string) => `
cluster: { domain: lab.test }
head: { address: 198.18.0.1 }
state: ${state}
subnets:
  - network: 198.18.0.0/24
    interface: eth0
    pool: 198.18.0.100-198.18.0.150
profiles:
  compute: { kernel: vmlinuz, initrd: initrd.img, loaders: { uefi-arm64: arm64/ipxe.efi } }
nodes:
  - { name: n001, macs: [${KNOWN}], ip: 198.18.0.11, profile: compute }
`;

interface Case {
  readonly name: string;
  readonly client: 0 | 1;
  readonly send: string[];
  readonly file: string | undefined;
  readonly address: string;
  readonly vendorClass?: string;
}

const pxe = (arch: number, vc = 'PXEClient') => [
  'option pxe-arch code 93 = unsigned integer 16;',
  `send pxe-arch ${arch};`,
  `send vendor-class-identifier "${vc}:Arch:${String(arch).padStart(5, '0')}:UNDI:003016";`,
];

const cases: Case[] = [
  { name: 'BIOS PXE gets the iPXE UNDI loader by TFTP', client: 0, send: pxe(0), file: 'undionly.kpxe', address: '198.18.0.11', vendorClass: 'PXEClient' },
  { name: 'UEFI x64 PXE gets ipxe.efi', client: 0, send: pxe(7), file: 'ipxe.efi', address: '198.18.0.11', vendorClass: 'PXEClient' },
  { name: 'UEFI x86-64 (arch 9) gets ipxe.efi', client: 0, send: pxe(9), file: 'ipxe.efi', address: '198.18.0.11' },
  { name: 'UEFI ARM64 gets the profile\'s ARM64 loader', client: 0, send: pxe(11), file: 'arm64/ipxe.efi', address: '198.18.0.11' },
  { name: 'UEFI HTTP boot gets a loader URL and vendor class HTTPClient', client: 0, send: pxe(16, 'HTTPClient'), file: 'http://198.18.0.1/loaders/ipxe.efi', address: '198.18.0.11', vendorClass: 'HTTPClient' },
  { name: 'iPXE gets its script URL, not iPXE again', client: 0, send: [...pxe(0), 'send user-class "iPXE";'], file: 'http://198.18.0.1/boot/52-54-00-00-00-01.ipxe', address: '198.18.0.11' },
  { name: 'the installed OS gets no boot file', client: 0, send: [], file: undefined, address: '198.18.0.11' },
  { name: 'an unknown PXE machine gets a pool address and the loader', client: 1, send: pxe(7), file: 'ipxe.efi', address: '198.18.0.100' },
];

t.test('PXE boot options by architecture and stage', async (t) => {
  const s = await startLabServer(t, { tag: 'px', clients: 2, clientMac: (i) => [KNOWN, UNKNOWN][i]!, config });
  for (const c of cases) {
    const client = s.lab.clients[c.client]!;
    const conf = path.join(s.dir, 'dhclient.conf');
    const leases = path.join(s.dir, `${client.ns}.leases`);
    writeFileSync(conf, [...c.send, 'request subnet-mask, routers, domain-name-servers, host-name, domain-name, vendor-class-identifier;'].join('\n') + '\n');
    rmSync(leases, { force: true });
    s.lab.run(client.ns, 'ip', ['addr', 'flush', 'dev', 'eth0']);
    const r = s.lab.run(client.ns, 'dhclient', ['-1', '-cf', conf, '-lf', leases, '-pf', path.join(s.dir, 'pid'), '-sf', '/bin/true', 'eth0'], 30_000);
    t.equal(r.code, 0, `${c.name}: dhclient got a lease`);
    const lease = readFileSync(leases, 'utf8');
    t.match(lease, `fixed-address ${c.address};`, `${c.name}: address ${c.address}`);
    if (c.file) t.match(lease, `filename "${c.file}";`, `${c.name}: file ${c.file}`);
    else t.notMatch(lease, /filename/, `${c.name}: no boot file`);
    if (c.vendorClass) t.match(lease, `option vendor-class-identifier "${c.vendorClass}";`, `${c.name}: vendor class ${c.vendorClass} echoed`);
    s.lab.run(client.ns, 'dhclient', ['-x', '-pf', path.join(s.dir, 'pid')], 10_000);
  }
});
