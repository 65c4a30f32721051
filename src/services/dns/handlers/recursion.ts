import type { RecursionAcl } from '../acl.ts';
import type { Handler } from '../context.ts';

/** Marks whether the client may resolve names outside the cluster through us (and so whether RA is set). */
export function recursionPolicy(acl: RecursionAcl, hasUpstreams: boolean): Handler {
  return (ctx) => {
    ctx.recursion = hasUpstreams && acl.allows(ctx.client);
    return true;
  };
}
