/**
 * Source selection, a simplified RFC 5905 section 11.2: the intersection
 * algorithm (Marzullo's, as the RFC gives it) separates the truechimers from
 * the falsetickers, then the system peer is the survivor with the lowest
 * stratum, then the shortest root distance. The RFC's clustering and
 * combining steps steer a clock; bootherd does not steer one (it serves the
 * system clock), so it needs only the one best source to report.
 */
import { MAX_DISTANCE } from './source.ts';

export interface Candidate<T> {
  readonly source: T;
  /** Source clock minus ours, seconds. */
  readonly offset: number;
  /** Root distance, seconds: the half-width of the interval the true time lies in. */
  readonly distance: number;
  readonly stratum: number;
}

/**
 * The truechimers: the candidates whose correctness intervals
 * [offset − distance, offset + distance] overlap the interval a majority of
 * them agree on. Empty when no majority agrees.
 */
export function truechimers<T>(candidates: readonly Candidate<T>[]): Candidate<T>[] {
  const usable = candidates.filter((c) => c.distance < MAX_DISTANCE);
  const n = usable.length;
  if (n === 0) return [];
  // Endpoints: type -1 for a lower edge, 0 for a midpoint, +1 for an upper edge.
  const edges: Array<{ value: number; type: number }> = [];
  for (const c of usable) edges.push({ value: c.offset - c.distance, type: -1 }, { value: c.offset, type: 0 }, { value: c.offset + c.distance, type: 1 });
  edges.sort((a, b) => a.value - b.value || a.type - b.type);
  for (let allow = 0; 2 * allow < n; allow++) {
    let found = 0;
    let chime = 0;
    let low = Infinity;
    let high = -Infinity;
    for (const e of edges) {
      chime -= e.type;
      if (chime >= n - allow) { low = e.value; break; }
      if (e.type === 0) found++;
    }
    chime = 0;
    for (let i = edges.length - 1; i >= 0; i--) {
      const e = edges[i]!;
      chime += e.type;
      if (chime >= n - allow) { high = e.value; break; }
      if (e.type === 0) found++;
    }
    if (found > allow) continue;
    if (high >= low) return usable.filter((c) => c.offset + c.distance >= low && c.offset - c.distance <= high);
  }
  return [];
}

/** Lower is better: stratum first, root distance within a stratum. */
function metric(c: Candidate<unknown>): number {
  return c.stratum * MAX_DISTANCE + c.distance;
}

/**
 * The system peer among the survivors. The current one is kept while it
 * survives at the best stratum, so equal sources do not make the head flap
 * between them from one poll to the next.
 */
export function choosePeer<T>(survivors: readonly Candidate<T>[], current: T | undefined): Candidate<T> | undefined {
  let best: Candidate<T> | undefined;
  for (const c of survivors) if (!best || metric(c) < metric(best)) best = c;
  if (!best) return undefined;
  const kept = survivors.find((c) => c.source === current);
  return kept && kept.stratum === best.stratum ? kept : best;
}
