/**
 * Answering one DNS message: decode, the handler chain, then the response.
 * Everything but forwarding completes synchronously, so an authoritative
 * answer leaves in the same turn of the event loop its query arrived in.
 * The same responder serves UDP and TCP, in the main thread or in a worker.
 */
import packet from 'dns-packet';
import { Flag, RCODE_NAMES, Rcode } from '../../../protocols/dns/constants.ts';
import { DnsDecodeError, decodeQuery, encodeQuery, type DnsQuery } from '../../../protocols/dns/query.ts';
import { buildResponse, EMPTY_SECTIONS, encodeSections, headerOnlyResponse, responseLength, udpLimit, type Sections } from '../../../protocols/dns/response.ts';
import { scanResponse } from '../../../protocols/dns/scan.ts';
import type { Logger } from '../../log.ts';
import { intToIp } from '../../net/ipv4.ts';
import type { RecursionAcl } from './acl.ts';
import { AnswerCache, type CacheLimits } from './cache.ts';
import type { DnsContext, Handler, Transport } from './context.ts';
import type { AnswerSource, DnsCounters, RcodeName } from './counters.ts';
import { Forwarder } from './forwarder.ts';
import { authoritative } from './handlers/authoritative.ts';
import { checkQuery } from './handlers/check.ts';
import { cachedAnswer, forwardOrRefuse } from './handlers/forward.ts';
import { recursionPolicy } from './handlers/recursion.ts';
import type { CompiledAnswer, ZoneIndex } from './zone-index.ts';
import type { DnsUpstream } from '../../config/sections/dns.ts';

/** The largest DNS message over TCP (its two-byte length prefix). */
const MAX_TCP_MESSAGE = 65535;

export interface ResponderOptions {
  readonly upstreams: readonly DnsUpstream[];
  readonly upstreamTimeoutMs: number;
  readonly cache: CacheLimits;
  readonly ednsUdpSize: number;
  readonly acl: RecursionAcl;
  /** The current zone index; called per query, so a rebuilt index is used at once. */
  readonly zones: () => ZoneIndex;
  readonly counters: DnsCounters;
  readonly log: Logger;
}

/** A context answered later: the message may be a view into a receive buffer that the next datagrams overwrite. */
function held(ctx: DnsContext): DnsContext {
  return { ...ctx, raw: Buffer.from(ctx.raw) };
}

export class DnsResponder {
  readonly cache: AnswerCache;
  private readonly forwarder: Forwarder;
  private readonly chain: Handler[];
  private readonly counters: DnsCounters;
  private readonly log: Logger;

  constructor(private readonly opts: ResponderOptions) {
    this.counters = opts.counters;
    this.log = opts.log;
    this.cache = new AnswerCache(opts.cache);
    this.forwarder = new Forwarder(opts.upstreams, opts.upstreamTimeoutMs, opts.counters);
    this.chain = [
      checkQuery(),
      recursionPolicy(opts.acl, this.forwarder.enabled),
      authoritative(opts.zones),
      cachedAnswer(this.cache),
      forwardOrRefuse(),
    ];
  }

  start(): Promise<void> { return this.forwarder.start(); }
  stop(): Promise<void> { return this.forwarder.stop(); }

  /**
   * The response to one message from `client` (IPv4 as an integer): a
   * Buffer at once, a promise when it was forwarded, undefined when the
   * message deserves no answer. `raw` is read only during this call.
   */
  respond(raw: Buffer, client: number, transport: Transport): Buffer | Promise<Buffer> | undefined {
    this.counters.queries[transport].value++;
    let query: DnsQuery;
    try {
      query = decodeQuery(raw);
    } catch (e) {
      if (!(e instanceof DnsDecodeError)) throw e;
      this.counters.dropped[e.reason].value++;
      if (!e.answerable) return undefined;
      return this.sent(headerOnlyResponse(raw, Rcode.FORMERR), Rcode.FORMERR, 'error');
    }
    const ctx: DnsContext = {
      raw, query, client, transport,
      limit: transport === 'tcp' ? MAX_TCP_MESSAGE : udpLimit(query, this.opts.ednsUdpSize),
      recursion: false,
      trace: this.log.isLevelEnabled('debug') ? [] : undefined,
    };
    for (const h of this.chain) if (!h(ctx)) break;
    if (ctx.trace) this.log.debug({ client: intToIp(client), transport, id: query.id, name: query.name, type: query.type, why: ctx.trace }, 'DNS decision');

    const d = ctx.decision;
    if (!d) return this.error(ctx, Rcode.SERVFAIL); // no handler decided: a bug in the chain
    switch (d.kind) {
      case 'answer': return d.chase ? this.chase(held(ctx), d.answer, d.chase) : this.fit(ctx, d.answer);
      case 'error': return this.error(ctx, d.rcode);
      case 'refuse': return this.error(ctx, Rcode.REFUSED);
      case 'cached': return this.sent(d.response, d.response[3]! & 0xf, 'cache');
      case 'forward': return this.forward(held(ctx));
    }
  }

  private flags(ctx: DnsContext): number {
    return ctx.recursion ? Flag.RA : 0;
  }

  private error(ctx: DnsContext, rcode: number): Buffer {
    return this.sent(buildResponse(ctx.raw, ctx.query, this.flags(ctx), rcode, EMPTY_SECTIONS, this.opts.ednsUdpSize), rcode, 'error');
  }

  /**
   * Our answer within the client's size limit: whole, or without the
   * additional section (no TC needed, RFC 2181 9), or empty with TC set so
   * the client asks again over TCP.
   */
  private fit(ctx: DnsContext, answer: CompiledAnswer, sections: Sections = answer.sections): Buffer {
    const q = ctx.query;
    let flags = Flag.AA | this.flags(ctx);
    let s = sections;
    if (responseLength(q, s) > ctx.limit) {
      if (answer.trimmed && sections === answer.sections && responseLength(q, answer.trimmed) <= ctx.limit) s = answer.trimmed;
      else { s = EMPTY_SECTIONS; flags |= Flag.TC; this.counters.truncated.value++; }
    }
    return this.sent(buildResponse(ctx.raw, q, flags, answer.rcode, s, this.opts.ednsUdpSize), answer.rcode, 'authoritative');
  }

  private async forward(ctx: DnsContext): Promise<Buffer> {
    const q = ctx.query;
    const response = await this.forwarder.resolve(ctx.raw, q.questionEnd, ctx.transport);
    if (!response) return this.error(ctx, Rcode.SERVFAIL);
    // Our answer to the client is not authoritative, whatever the upstream's was.
    response[2]! &= ~(Flag.AA >>> 8);
    try {
      this.cache.put(q, response, scanResponse(response));
    } catch (e) {
      if (!(e instanceof DnsDecodeError)) throw e;
      this.counters.dropped['upstream-malformed'].value++;
      return this.error(ctx, Rcode.SERVFAIL);
    }
    return this.sent(response, response[3]! & 0xf, 'upstream');
  }

  /**
   * An alias of ours whose chain ends outside our data: the upstreams
   * resolve the last name, and their records follow our CNAMEs.
   */
  private async chase(ctx: DnsContext, answer: CompiledAnswer, target: string): Promise<Buffer> {
    const q = ctx.query;
    const question = encodeQuery(q.id, target, q.type, Flag.RD);
    const response = await this.forwarder.resolve(question, question.length, ctx.transport);
    if (!response) return this.error(ctx, Rcode.SERVFAIL);
    let decoded;
    try {
      decoded = packet.decode(response);
    } catch {
      this.counters.dropped['upstream-malformed'].value++;
      return this.error(ctx, Rcode.SERVFAIL);
    }
    const rest = encodeSections(q.name, decoded.answers ?? []);
    const sections: Sections = { an: answer.sections.an + rest.an, ns: 0, ar: 0, bytes: Buffer.concat([answer.sections.bytes, rest.bytes]) };
    return this.fit(ctx, { ...answer, rcode: response[3]! & 0xf, trimmed: undefined }, sections);
  }

  private sent(response: Buffer, rcode: number, source: AnswerSource): Buffer {
    const name = (RCODE_NAMES[rcode] ?? 'OTHER') as RcodeName;
    (this.counters.responses[name] ?? this.counters.responses.OTHER).value++;
    this.counters.answers[source].value++;
    return response;
  }
}
