/**
 * Boot timelines: each node's last boot as stages with times (DHCP, TFTP
 * loader, iPXE script, kernel, initrd, booted). Services report stages; a
 * firmware DISCOVER starts a new timeline. Writes are not awaited by the
 * reporting service: a timeline is a record of what happened, not a promise
 * made to a client.
 */
import type { Store } from '../store/store.ts';
import type { BootStage, BootTimeline } from './types.ts';

/** A pool client's (a MAC of no node) last boot stage. */
export interface ClientStage {
  readonly stage: BootStage['stage'];
  readonly at: number;
  readonly detail?: string;
}

/** Pool clients whose last stage is kept; past it the longest silent is forgotten. */
const CLIENTS_KEPT = 4096;

export class BootTimelines {
  /**
   * Pool clients' last stages, by MAC: in this head's memory only, never the
   * store, so DISCOVERs from any number of made-up MACs write nothing and
   * keep a bounded map. A head shows the stages it served itself.
   */
  private readonly clients = new Map<string, ClientStage>();

  constructor(private readonly store: Store, private readonly onError: (e: Error) => void = () => undefined) {}

  /** A pool client reached `stage`. */
  recordClient(mac: string, stage: BootStage['stage'], now: number, detail?: string): void {
    this.clients.delete(mac);
    this.clients.set(mac, { stage, at: now, ...(detail ? { detail } : {}) });
    if (this.clients.size > CLIENTS_KEPT) this.clients.delete(this.clients.keys().next().value!);
  }

  /** A pool client's last stage, as this head saw it. */
  clientStage(mac: string): ClientStage | undefined {
    return this.clients.get(mac);
  }

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
