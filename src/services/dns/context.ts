import type { DnsQuery } from '../../../protocols/dns/query.ts';
import type { CompiledAnswer } from './zone-index.ts';

export type Transport = 'udp' | 'tcp';

/** One DNS query on its way through the handler chain. */
export interface DnsContext {
  /** The query datagram (or TCP message) as received. */
  readonly raw: Buffer;
  readonly query: DnsQuery;
  /** The sender's IPv4 address as an integer. */
  readonly client: number;
  readonly transport: Transport;
  /** The largest response this client takes: 65535 over TCP, 512 or its EDNS size over UDP. */
  readonly limit: number;
  /** Whether this client may use us as a resolver (cluster networks, loopback, dns.allowRecursion). */
  recursion: boolean;
  /** An error a handler decided (NOTIMP, REFUSED, BADVERS). */
  rcode?: number;
  /** Our own data's answer. */
  answer?: CompiledAnswer;
  /** A cached upstream response, already made out to this query. */
  cached?: Buffer;
  /** The question goes to the upstream resolvers. */
  forward: boolean;
  /** When set (debug logging), handlers record why they decided. */
  readonly trace: string[] | undefined;
}

/** A handler reads the query and decides; returning false ends the chain. */
export type Handler = (ctx: DnsContext) => boolean;
