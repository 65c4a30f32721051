import { z } from 'zod';
import { cidr, duration, hostname, ipv4, ownerName, port, serverAddress } from '../fields.ts';

/** An upstream resolver: `198.18.0.53` or `198.18.0.53:5353`. */
const upstream = serverAddress(53, 'expected an upstream resolver like 198.18.0.53 or 198.18.0.53:5353');

/** One TXT string is at most 255 bytes on the wire; longer text is split into several strings. */
const txtText = z.union([z.string(), z.array(z.string()).min(1)], { error: 'expected text, or a list of texts' })
  .transform((v) => (typeof v === 'string' ? [v] : v).flatMap(splitTxt));

function splitTxt(s: string): string[] {
  const out: string[] = [];
  let chunk = '';
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > 255) { out.push(chunk); chunk = ''; bytes = 0; }
    chunk += ch;
    bytes += n;
  }
  out.push(chunk);
  return out;
}

/**
 * `dns:` in the cluster file. Every record comes from the cluster model
 * (nodes, hosts, SRV records, named DHCP leases, the head); this section adds
 * what only DNS needs: aliases, TXT records, the Slurm controller's SRV
 * records, forwarding and the listener.
 */
export const dnsSection = z.strictObject({
  enabled: z.boolean().default(true),
  address: ipv4.default('0.0.0.0'),
  /** UDP and TCP. */
  port: port.default(53),
  /** TTL of the cluster's own records: short, so that a change reaches clients' caches soon. */
  ttl: duration.default(60),
  /** How long clients may cache "no such name" (the SOA minimum, RFC 2308). */
  negativeTtl: duration.default(60),
  /** Resolvers that answer everything outside the cluster's zones; none means REFUSED for those names. */
  upstreams: z.array(upstream).default([]),
  /** How long to wait for one upstream before trying the next; SERVFAIL when all are silent. */
  upstreamTimeout: duration.pipe(z.number().min(1, { error: 'expected at least 1 second' })).default(2),
  /** Cache of forwarded answers. */
  cache: z.strictObject({
    /** Entries kept; 0 turns the cache off. */
    size: z.number({ error: 'expected a number of entries like 10000' }).int().min(0).default(10000),
    /** Upper bound on any cached TTL. */
    maxTtl: duration.default(86400),
    /** Upper bound on cached "no such name"/"no data" answers (RFC 2308 negative caching). */
    maxNegativeTtl: duration.default(3600),
  }).prefault({}),
  /**
   * Networks besides the cluster's subnets and loopback that may use this
   * server as a resolver. Everyone else gets answers for the cluster's names
   * only (REFUSED for the rest): no open resolver.
   */
  allowRecursion: z.array(cidr).default([]),
  /**
   * Processes answering UDP queries: 1 answers in the main event loop; more
   * start worker threads sharing the port (SO_REUSEPORT), one per core.
   */
  workers: z.number({ error: 'expected a number of workers like 1 or 2' }).int().min(1).max(64, { error: 'expected at most 64 workers' }).default(1),
  /** The UDP payload size we offer EDNS clients (1232 avoids IP fragmentation, DNS flag day 2020). */
  ednsUdpSize: z.number({ error: 'expected a size in bytes like 1232' }).int().min(512).max(65535).default(1232),
  /** A TCP connection with no query for this long is closed (RFC 7766). */
  tcpIdleTimeout: duration.default(10),
  /**
   * A TCP query must arrive whole within this long of its first byte: a
   * client trickling a byte at a time cannot hold a connection by keeping
   * the idle timer busy.
   */
  tcpMessageTimeout: duration.refine((v) => v >= 1, { error: 'expected tcpMessageTimeout of at least 1s, like 5' }).default(5),
  /** TCP connections served at once; more are closed as they arrive. */
  tcpConnections: z.number({ error: 'expected a number of TCP connections like 512' }).int({ error: 'expected a whole number of TCP connections like 512' }).min(1, { error: 'tcpConnections must be at least 1' }).max(65536, { error: 'tcpConnections is at most 65536' }).default(512),
  /** TCP connections one client address may hold at once, so one host cannot take every connection. */
  tcpConnectionsPerClient: z.number({ error: 'expected a number of TCP connections like 16' }).int({ error: 'expected a whole number of TCP connections like 16' }).min(1, { error: 'tcpConnectionsPerClient must be at least 1' }).max(65536, { error: 'tcpConnectionsPerClient is at most 65536' }).default(16),
  /** Aliases: `name` answers as a CNAME for `target`. Relative names are in the cluster domain. */
  aliases: z.array(z.strictObject({ name: ownerName, target: ownerName })).default([]),
  txt: z.array(z.strictObject({ name: ownerName, text: txtText })).default([]),
  /**
   * Slurm's controller: generates `_slurmctld._tcp.<domain>` SRV records,
   * which Slurm's configless mode looks up. Backups get lower priorities.
   */
  slurm: z.strictObject({
    controller: hostname,
    backups: z.array(hostname).default([]),
    port: port.default(6817),
  }).optional(),
}).prefault({});

export type DnsConfig = z.output<typeof dnsSection>;
export type DnsUpstream = DnsConfig['upstreams'][number];
