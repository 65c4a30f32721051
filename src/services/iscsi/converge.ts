/**
 * One reconcile against a backend, I/O at the edges: read the actual state,
 * plan, apply in order, read back (the plan must now be empty, or the state
 * is reported as unexpected), save. The service adds disks, scheduling and
 * status around it; tests drive it directly with recorded or real tools.
 */
import type { IscsiBackend } from './backend.ts';
import { describeOp, plan, type Op, type Plan } from './plan.ts';
import type { DesiredState } from './state.ts';

export class UnexpectedStateError extends Error {
  constructor(readonly backend: string, readonly remaining: readonly Op[]) {
    super(`unexpected state: after applying, ${backend} still differs from the cluster model: ${remaining.map(describeOp).join('; ')}`);
    this.name = 'UnexpectedStateError';
  }
}

export interface ConvergeResult {
  readonly plan: Plan;
  readonly applied: readonly Op[];
}

export async function converge(backend: IscsiBackend, desired: DesiredState, onApplied?: (op: Op) => void, onPlan?: (p: Plan) => void): Promise<ConvergeResult> {
  const p = plan(desired, await backend.read(), backend.shape);
  onPlan?.(p);
  const applied: Op[] = [];
  if (!p.ops.length) return { plan: p, applied };
  await backend.apply(p.ops, (op) => { applied.push(op); onApplied?.(op); });
  const after = plan(desired, await backend.read(), backend.shape);
  if (after.ops.length) throw new UnexpectedStateError(backend.name, after.ops);
  await backend.save();
  return { plan: p, applied };
}
