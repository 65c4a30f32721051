/**
 * The HTTP paths boot clients are sent to. DHCP hands these out and the HTTP
 * service serves them, so both read them from here. Exact URLs, no redirects:
 * UEFI HTTP boot clients do not follow them.
 */
import type { Config } from '../config/load.ts';

/** The HTTP base URL nodes are given (iPXE scripts, kernels, UEFI HTTP loaders). */
export function httpBaseOf(config: Config): string {
  if (config.http.baseUrl) return config.http.baseUrl.replace(/\/$/, '');
  const scheme = config.http.tls ? 'https' : 'http';
  return `${scheme}://${config.head.address}${config.http.port === (config.http.tls ? 443 : 80) ? '' : `:${config.http.port}`}`;
}

/** Per-node iPXE script, addressed by the MAC iPXE booted from. */
export function scriptUrl(base: string, mac: string): string {
  return `${base}/boot/${mac.replace(/:/g, '-')}.ipxe`;
}

/** First-stage loaders (iPXE binaries) for UEFI HTTP boot clients. */
export function loaderUrl(base: string, file: string): string {
  return `${base}/loaders/${encodeURI(file)}`;
}

/** Kernels, initrds and images from the boot file root. */
export function fileUrl(base: string, file: string): string {
  return `${base}/files/${file.split('/').map(encodeURIComponent).join('/')}`;
}
