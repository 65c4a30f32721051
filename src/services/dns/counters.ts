/**
 * The DNS service's counters. The answering code increments plain
 * `{ value }` series (a property add per query). In the main thread those
 * series are the Metrics registry's own; a worker thread counts into local
 * ones of the same shape and posts their values, which the primary adds to
 * the registry's, so /metrics shows one total across workers.
 */
import type { DecodeFailure } from '../../../protocols/dns/errors.ts';
import type { Metrics } from '../../metrics.ts';

interface Series { value: number }

const DECODE_FAILURES: readonly DecodeFailure[] = ['short', 'response', 'question-count', 'truncated', 'label-type', 'name-too-long', 'pointer', 'opt'];
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED', 'BADVERS', 'OTHER'] as const;
const SOURCES = ['authoritative', 'cache', 'upstream', 'error'] as const;

export type RcodeName = typeof RCODES[number];
export type AnswerSource = typeof SOURCES[number];

export interface DnsCounters {
  readonly queries: Readonly<Record<'udp' | 'tcp', Series>>;
  readonly responses: Readonly<Record<RcodeName, Series>>;
  readonly answers: Readonly<Record<AnswerSource, Series>>;
  /** Malformed queries by reason: those answered with FORMERR are counted here too. */
  readonly dropped: Readonly<Record<DecodeFailure | 'oversized' | 'upstream-mismatch' | 'upstream-malformed', Series>>;
  readonly truncated: Series;
  readonly upstreamTimeouts: Series;
}

function build(series: (family: string, help: string, labels: Record<string, string>) => Series): DnsCounters {
  const by = <K extends string>(keys: readonly K[], family: string, help: string, label: string) =>
    Object.fromEntries(keys.map((k) => [k, series(family, help, { [label]: k })])) as Record<K, Series>;
  return {
    queries: by(['udp', 'tcp'], 'bootherd_dns_queries_total', 'DNS queries received, by transport', 'transport'),
    responses: by(RCODES, 'bootherd_dns_responses_total', 'DNS responses sent, by rcode', 'rcode'),
    answers: by(SOURCES, 'bootherd_dns_answers_total', 'DNS responses by where the answer came from', 'source'),
    dropped: by([...DECODE_FAILURES, 'oversized', 'upstream-mismatch', 'upstream-malformed'] as const, 'bootherd_dns_dropped_total', 'Malformed DNS messages (queries, or upstream responses), by reason', 'reason'),
    truncated: series('bootherd_dns_truncated_total', 'UDP responses sent with TC set (too large; the client retries over TCP)', {}),
    upstreamTimeouts: series('bootherd_dns_upstream_timeouts_total', 'Forwarded queries an upstream did not answer in time', {}),
  };
}

/** Counters that are the registry's own series (the main thread). */
export function registryCounters(metrics: Metrics): DnsCounters {
  return build((family, help, labels) => metrics.counter(family, help).with(labels));
}

/** Counters of a worker thread, reported to the primary with `counterValues`. */
export function localCounters(): DnsCounters {
  return build(() => ({ value: 0 }));
}

/** Every series in a fixed order, so two counter sets line up value for value. */
function allSeries(c: DnsCounters): Series[] {
  return [
    ...Object.values(c.queries), ...Object.values(c.responses), ...Object.values(c.answers), ...Object.values(c.dropped),
    c.truncated, c.upstreamTimeouts,
  ];
}

export function counterValues(c: DnsCounters): number[] {
  return allSeries(c).map((s) => s.value);
}

/** Adds what a worker counted since its last report (`previous`) to `target`. */
export function addCounterDelta(target: DnsCounters, previous: readonly number[], current: readonly number[]): void {
  allSeries(target).forEach((s, i) => { s.value += (current[i] ?? 0) - (previous[i] ?? 0); });
}
