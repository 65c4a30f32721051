/** The boot decision, case by case: a pure function of the request and the node's profile. */
import t from 'tap';
import { decideBoot, type BootRequest } from '../../src/services/dhcp/boot.ts';
import { DEFAULT_LOADERS } from '../../src/config/schema.ts';
import type { BootProfile } from '../../src/cluster/types.ts';

const profile: BootProfile = { name: 'compute', kernel: 'vmlinuz', initrd: [], cmdline: '', loaders: { ...DEFAULT_LOADERS, 'uefi-arm64': 'arm/ipxe.efi', 'uefi-arm64-http': 'arm/ipxe.efi' } };
const base = 'http://198.18.0.1';
const mac = '52:54:00:00:00:01';
const req = (r: Partial<BootRequest>): BootRequest => ({ vendorClass: undefined, arch: undefined, isIpxe: false, mac, ...r });
const ctx = { profile, httpBase: base, bootUnknown: true, known: true };

const table: Array<[string, BootRequest, typeof ctx, object]> = [
  ['legacy PXE without option 93 is BIOS', req({ vendorClass: 'PXEClient:Arch:00000:UNDI:002001' }), ctx, { kind: 'tftp', firmware: 'bios', file: 'undionly.kpxe' }],
  ['BIOS', req({ vendorClass: 'PXEClient', arch: 0 }), ctx, { kind: 'tftp', file: 'undionly.kpxe' }],
  ['UEFI IA32', req({ vendorClass: 'PXEClient', arch: 6 }), ctx, { kind: 'tftp', firmware: 'uefi-ia32', file: 'ipxe.efi' }],
  ['UEFI x64 (7)', req({ vendorClass: 'PXEClient', arch: 7 }), ctx, { kind: 'tftp', firmware: 'uefi-x64', file: 'ipxe.efi' }],
  ['UEFI x64 (9)', req({ vendorClass: 'PXEClient', arch: 9 }), ctx, { kind: 'tftp', firmware: 'uefi-x64', file: 'ipxe.efi' }],
  ['UEFI ARM64 takes the profile loader', req({ vendorClass: 'PXEClient', arch: 11 }), ctx, { kind: 'tftp', firmware: 'uefi-arm64', file: 'arm/ipxe.efi' }],
  ['UEFI HTTP x64', req({ vendorClass: 'HTTPClient:Arch:00016', arch: 16 }), ctx, { kind: 'http', firmware: 'uefi-x64-http', url: `${base}/loaders/ipxe.efi` }],
  ['UEFI HTTP ARM64', req({ vendorClass: 'HTTPClient', arch: 19 }), ctx, { kind: 'http', url: `${base}/loaders/arm/ipxe.efi` }],
  ['HTTPClient with a non-HTTP arch still gets a URL', req({ vendorClass: 'HTTPClient', arch: 7 }), ctx, { kind: 'http' }],
  ['iPXE gets the script URL (no chainload loop)', req({ vendorClass: 'PXEClient', arch: 0, isIpxe: true }), ctx, { kind: 'script', url: `${base}/boot/52-54-00-00-00-01.ipxe` }],
  ['iPXE without a vendor class too', req({ isIpxe: true }), ctx, { kind: 'script' }],
  ['an OS client gets nothing', req({}), ctx, { kind: 'none' }],
  ['an unknown architecture gets nothing', req({ vendorClass: 'PXEClient', arch: 99 }), ctx, { kind: 'none' }],
  ['an unknown machine boots when allowed', req({ vendorClass: 'PXEClient', arch: 7 }), { ...ctx, known: false }, { kind: 'tftp', file: 'ipxe.efi' }],
  ['an unknown machine does not when not', req({ vendorClass: 'PXEClient', arch: 7 }), { ...ctx, known: false, bootUnknown: false }, { kind: 'none' }],
];

for (const [name, request, context, expected] of table) {
  t.test(name, async (t) => {
    const d = decideBoot(request, context);
    t.match(d, expected);
    t.ok(d.why.length > 10, 'says why');
  });
}
