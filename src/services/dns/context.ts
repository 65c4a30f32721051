import type { DnsQuery } from '../../../protocols/dns/query.ts';
import type { CompiledAnswer } from './zone-index.ts';

export type Transport = 'udp' | 'tcp';

/**
 * What the chain decided for one query, made into a response by the
 * responder in one place (as DHCP's handlers end in a `BootDecision`).
 */
export type DnsDecision =
  /** Our own data's answer; `chase` is the name an alias of ours leads to outside our data, resolved upstream for clients that may recurse. */
  | { readonly kind: 'answer'; readonly answer: CompiledAnswer; readonly chase: string | undefined }
  /** A response with this rcode and no records (NOTIMP, BADVERS, REFUSED for what is never served). */
  | { readonly kind: 'error'; readonly rcode: number }
  /** A cached upstream response, already made out to this query. */
  | { readonly kind: 'cached'; readonly response: Buffer }
  /** The question goes to the upstream resolvers. */
  | { readonly kind: 'forward' }
  /** Not ours, and this client may not recurse through us (or did not ask to): REFUSED. */
  | { readonly kind: 'refuse' };

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
  /** Set by the handler that decides; the chain ends there. */
  decision?: DnsDecision;
  /** When set (debug logging), handlers record why they decided. */
  readonly trace: string[] | undefined;
}

/** A handler reads the query and decides; returning false ends the chain. */
export type Handler = (ctx: DnsContext) => boolean;
