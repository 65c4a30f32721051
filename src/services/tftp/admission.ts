/**
 * The cap on concurrent transfers. Requests beyond it wait in arrival order
 * and are started as transfers finish, so in a storm every node is served in
 * turn and none is starved by faster ones: a client whose request (or whose
 * first packet) was lost keeps its place, and its repeated request only
 * refreshes it. A waiting request not repeated for `staleMs` is dropped:
 * its client has given up or started over with a new port.
 */
/** `T`: what waits (a request); `K`: how a client is told apart (its address and port). */
export class Admission<T, K extends string | number = string> {
  private active = 0;
  /** Map order is arrival order. */
  private readonly waiting = new Map<K, { readonly item: T; heardAt: number }>();

  /** `forget`: told of each waiting request dropped without starting (stale, or cleared). */
  constructor(private readonly max: number, private readonly maxWaiting: number, private readonly staleMs: number, private readonly forget: (item: T) => void = () => undefined) {}

  get running(): number { return this.active; }
  get queued(): number { return this.waiting.size; }

  /**
   * 'start': a slot is taken, start now. 'wait': queued behind earlier
   * requests. 'full': the queue is full too; drop the request (the client
   * will ask again).
   */
  admit(key: K, item: T, now: number): 'start' | 'wait' | 'full' {
    if (this.active < this.max && this.waiting.size === 0) { this.active++; return 'start'; }
    if (this.waiting.size >= this.maxWaiting) return 'full';
    this.waiting.set(key, { item, heardAt: now });
    return 'wait';
  }

  /** Whether `key` is waiting; if so, its client was heard again now. */
  touch(key: K, now: number): boolean {
    const w = this.waiting.get(key);
    if (w) w.heardAt = now;
    return w !== undefined;
  }

  /** Frees a slot; returns the request that takes it, if one waits. */
  release(now: number): T | undefined {
    this.active--;
    for (const [key, w] of this.waiting) {
      this.waiting.delete(key);
      if (now - w.heardAt > this.staleMs) { this.forget(w.item); continue; }
      this.active++;
      return w.item;
    }
    return undefined;
  }

  clear(): void {
    for (const w of this.waiting.values()) this.forget(w.item);
    this.waiting.clear();
    this.active = 0;
  }
}
