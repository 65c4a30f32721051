/**
 * Boot timelines: each node's last boot as stages with times (DHCP, TFTP
 * loader, iPXE script, kernel, initrd, booted). Services report stages; a
 * firmware DISCOVER starts a new timeline. Writes are not awaited by the
 * reporting service: a timeline is a record of what happened, not a promise
 * made to a client.
 */
import type { Store } from '../store/store.ts';
import type { BootStage, BootTimeline } from './types.ts';

export class BootTimelines {
  constructor(private readonly store: Store, private readonly onError: (e: Error) => void = () => undefined) {}

  /** Starts a fresh timeline for a node (firmware began a boot). */
  start(node: string, stage: BootStage['stage'], now: number, detail?: string): void {
    this.write({ node, startedAt: now, stages: [{ stage, at: now, ...(detail ? { detail } : {}) }] });
  }

  record(node: string, stage: BootStage['stage'], now: number, detail?: string): void {
    const current = this.store.get('boots', node);
    if (!current) return this.start(node, stage, now, detail);
    this.write({ ...current, stages: [...current.stages, { stage, at: now, ...(detail ? { detail } : {}) }] });
  }

  get(node: string): BootTimeline | undefined {
    return this.store.get('boots', node);
  }

  private write(t: BootTimeline): void {
    this.store.put('boots', t.node, t).catch(this.onError);
  }
}
