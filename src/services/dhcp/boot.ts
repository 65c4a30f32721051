/**
 * The boot decision: which file or URL a DHCP client is sent to. A small pure
 * function of what the client said and the node record, tested case by case.
 *
 * The chainload loop: PXE firmware loads iPXE by TFTP; iPXE then asks DHCP
 * again and, if answered with the same file, loads itself forever. iPXE marks
 * its requests (user class "iPXE", or option 175), and those get the HTTP URL
 * of the node's iPXE script instead.
 */
import type { BootProfile, Firmware } from '../../cluster/types.ts';
import { loaderUrl, scriptUrl } from '../../cluster/urls.ts';

/** Option 93 values (IANA "Processor Architecture Types") to firmware. */
export const ARCH_TO_FIRMWARE: Readonly<Record<number, Firmware>> = {
  0: 'bios',
  6: 'uefi-ia32',
  7: 'uefi-x64',
  9: 'uefi-x64',
  10: 'uefi-arm32',
  11: 'uefi-arm64',
  16: 'uefi-x64-http',
  19: 'uefi-arm64-http',
};

export interface BootRequest {
  /** Option 60 starts with PXEClient (PXE firmware) or HTTPClient (UEFI HTTP boot). */
  readonly vendorClass: string | undefined;
  /** Option 93's first value; undefined when absent. */
  readonly arch: number | undefined;
  /** The client is iPXE (user class 77 "iPXE" or option 175 present). */
  readonly isIpxe: boolean;
  readonly mac: string;
}

export interface BootContext {
  /** Profile of the matched node, or the default profile for unknown machines. */
  readonly profile: BootProfile;
  /** Base URL of this head's HTTP service, e.g. http://198.18.0.1 */
  readonly httpBase: string;
  /** Whether machines without a reservation may boot (the discovery path). */
  readonly bootUnknown: boolean;
  readonly known: boolean;
}

export type BootDecision =
  | { readonly kind: 'none'; readonly why: string }
  /** PXE firmware: TFTP loader in `file`/option 67, next-server in siaddr/option 66. */
  | { readonly kind: 'tftp'; readonly firmware: Firmware; readonly file: string; readonly why: string }
  /** UEFI HTTP boot: a URL as the boot file, and vendor class HTTPClient echoed. */
  | { readonly kind: 'http'; readonly firmware: Firmware; readonly url: string; readonly why: string }
  /** iPXE: the URL of the node's script. */
  | { readonly kind: 'script'; readonly url: string; readonly why: string };

export function decideBoot(req: BootRequest, ctx: BootContext): BootDecision {
  if (!ctx.known && !ctx.bootUnknown) return { kind: 'none', why: 'unknown machine and dhcp.bootUnknown is false' };
  if (req.isIpxe) {
    return { kind: 'script', url: scriptUrl(ctx.httpBase, req.mac), why: 'iPXE client (user class iPXE or option 175): send its script URL, not iPXE again' };
  }
  const vc = req.vendorClass ?? '';
  const pxe = vc.startsWith('PXEClient');
  const http = vc.startsWith('HTTPClient');
  if (!pxe && !http) return { kind: 'none', why: 'not a PXE or HTTP boot client (no vendor class PXEClient/HTTPClient): an OS asking for an address' };
  const arch = req.arch ?? 0;
  const firmware = ARCH_TO_FIRMWARE[arch];
  if (!firmware) return { kind: 'none', why: `client architecture ${arch} (option 93) has no loader; supported: ${Object.keys(ARCH_TO_FIRMWARE).join(', ')}` };
  const loader = ctx.profile.loaders[firmware];
  if (http || firmware.endsWith('-http')) {
    return { kind: 'http', firmware, url: loaderUrl(ctx.httpBase, loader), why: `UEFI HTTP boot (arch ${arch}): loader ${loader} by URL from profile ${ctx.profile.name}` };
  }
  return { kind: 'tftp', firmware, file: loader, why: `PXE ${firmware} (arch ${arch}): loader ${loader} by TFTP from profile ${ctx.profile.name}` };
}
