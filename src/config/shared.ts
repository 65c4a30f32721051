/**
 * The fields of the cluster file every head must agree on, and a digest of
 * each: heads compare digests (through etcd) to find cluster files that
 * differ. Head-specific settings (head, state, files, log, listeners,
 * interface names, NTP upstreams) are left out: they may differ per head.
 */
import { createHash } from 'node:crypto';
import type { Config } from './load.ts';

function shared(config: Config): Record<string, unknown> {
  const { address: _dnsAddress, port: _dnsPort, workers: _dnsWorkers, ...dns } = config.dns;
  return {
    cluster: config.cluster,
    // Each head may reach a subnet through an interface of its own name.
    subnets: config.subnets.map(({ interface: _iface, ...s }) => s),
    dhcp: config.dhcp,
    dns,
    profiles: config.profiles,
    nodes: config.nodes,
    hosts: config.hosts,
    srv: config.srv,
    heads: config.heads,
    // The TLS files are each head's own; whether members talk TLS is shared.
    store: { ...config.store, tls: config.store.tls !== undefined },
  };
}

/** JSON with object keys sorted, so equal values give equal text whatever the key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Field name -> digest (16 hex digits of SHA-256) of the shared fields. */
export function sharedFieldDigests(config: Config): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, value] of Object.entries(shared(config))) {
    out[field] = createHash('sha256').update(canonical(value)).digest('hex').slice(0, 16);
  }
  return out;
}

/** The shared fields whose digests differ (a field only one side has counts as differing). */
export function differingFields(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): string[] {
  const fields = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...fields].filter((f) => a[f] !== b[f]).sort();
}
