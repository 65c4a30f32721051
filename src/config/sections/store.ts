import { z } from 'zod';
import { isIpv4 } from '../../net/ipv4.ts';

const ENDPOINT_HINT = 'expected an etcd client URL like http://198.18.0.1:2379';

/** An etcd client URL: http(s)://<IPv4 or host name>:<port>, kept without a trailing slash. */
const endpoint = z.string({ error: ENDPOINT_HINT }).transform((v, ctx) => {
  let url: URL;
  try { url = new URL(v.trim()); } catch {
    ctx.addIssue({ code: 'custom', message: `${ENDPOINT_HINT}; got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname || !url.port || (url.pathname !== '/' && url.pathname !== '')) {
    ctx.addIssue({ code: 'custom', message: `${ENDPOINT_HINT} (scheme, host and port, no path); got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  if (/^[\d.]+$/.test(url.hostname) && !isIpv4(url.hostname)) {
    ctx.addIssue({ code: 'custom', message: `${ENDPOINT_HINT}; ${url.hostname} is not an IPv4 address` });
    return z.NEVER;
  }
  return `${url.protocol}//${url.host}`;
});

/**
 * `store:` in the cluster file: where the records that outlive a process
 * live. `embedded` (the default) is the journal in `state:`, one head only.
 * `etcd` shares them between the heads of `heads:`: with `endpoints`, through
 * an etcd cluster run elsewhere; without, every head runs its own etcd member
 * (src/store/etcd-member.ts) and the members form one cluster.
 */
const pemFile = (what: string) => z.string({ error: `expected the path of ${what} (PEM), absolute or relative to the cluster file` }).min(1);

/** TLS on this head's etcd member's peer port (members to members); the files are this head's own. */
const peerTls = z.strictObject({
  ca: pemFile('the CA certificate that signed every member\'s peer certificate'),
  cert: pemFile('this head\'s peer certificate (its address in the subject alternative names)'),
  key: pemFile('the private key of this head\'s peer certificate'),
});

export const storeSection = z.strictObject({
  kind: z.enum(['embedded', 'etcd'], { error: 'expected embedded (one head, the journal in state:) or etcd (several heads)' }).default('embedded'),
  /** Client URLs of an etcd cluster run elsewhere; omit to run a member on every head. */
  endpoints: z.array(endpoint).min(1, { error: 'list at least one endpoint, or omit endpoints to run an etcd member on every head' }).optional(),
  /** TLS between the members bootherd runs (etcd's --peer-* flags); the client port stays plain HTTP. */
  tls: peerTls.optional(),
}).default({ kind: 'embedded' });

export type StoreConfig = z.output<typeof storeSection>;
