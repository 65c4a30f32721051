import type { Handler } from '../context.ts';
import type { ZoneIndex } from '../zone-index.ts';

/** Answers from the cluster's own data: names in our zones (found or not) and the few we hold outside them. */
export function authoritative(zones: () => ZoneIndex): Handler {
  return (ctx) => {
    const q = ctx.query;
    const answer = zones().lookup(q.name, q.type, q.nameLength);
    if (!answer) return true;
    // Only clients that may recurse have an alias leading outside our data followed upstream.
    ctx.decision = { kind: 'answer', answer, chase: ctx.recursion ? answer.chase : undefined };
    ctx.trace?.push(`${q.name} is cluster data: rcode ${answer.rcode}, ${answer.sections.an} answer(s)${answer.chase ? `, alias leads to ${answer.chase}` : ''}`);
    return false;
  };
}
