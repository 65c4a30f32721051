/**
 * Leader election on etcd, the algorithm of etcd's own concurrency package:
 * each candidate puts <prefix>/<lease id> on its session's lease (the key
 * lives as long as the head does), and the candidate whose key has the lowest
 * create revision leads. A candidate waits for the deletion of the key
 * created just before its own (not of the leader's: no herd when it goes).
 *
 * Leadership is fenced: the leader's key with its create revision is a
 * LeaderFence, and every leader action is a transaction guarded on it (the
 * key still exists with that create revision), so a head that lost its
 * session while busy cannot act as leader after the next one took over.
 */
import { EtcdCallError, EtcdClient, prefixEnd, type EtcdKeyValue, type EtcdSession, type EtcdWatcher } from './etcd-client.ts';
import type { LeaderFence } from './store.ts';

export interface ElectionLeader {
  readonly key: string;
  /** What the leader proclaimed (a head's name, say). */
  readonly value: string;
  readonly createRevision: number;
}

export class ElectionLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ElectionLostError';
  }
}

const leaderOf = (kv: EtcdKeyValue): ElectionLeader => ({ key: kv.key.toString(), value: kv.value.toString(), createRevision: kv.createRevision });

export class EtcdElection {
  readonly prefix: string;
  private own: LeaderFence | undefined;
  private leading = false;

  /** `prefix`: the election's directory, like /bootherd/<cluster>/election/ntp. */
  constructor(private readonly client: EtcdClient, private readonly session: EtcdSession, prefix: string) {
    this.prefix = prefix.endsWith('/') ? prefix : `${prefix}/`;
  }

  /** The fence of this candidate's leadership; undefined while it is not (or no longer) the leader. */
  get fence(): LeaderFence | undefined {
    return this.leading && this.session.alive ? this.own : undefined;
  }

  /**
   * Joins the election with `value` and resolves once this candidate leads,
   * with its fence. Rejects with ElectionLostError if the session ends first
   * or `signal` aborts (then the candidacy is withdrawn).
   */
  async campaign(value: string, signal?: AbortSignal): Promise<LeaderFence> {
    if (!this.session.alive) throw new ElectionLostError('the etcd session has ended; start a new one to campaign');
    const key = Buffer.from(`${this.prefix}${BigInt(this.session.lease).toString(16)}`);
    const r = await this.client.txn({
      compare: [{ key, target: 'CREATE', createRevision: 0 }],
      success: [{ put: { key, value: Buffer.from(value), lease: this.session.lease } }],
      failure: [{ range: { key } }],
    });
    let createRevision = r.revision;
    if (!r.succeeded) {
      // Already a candidate on this session (a campaign again after a resign that failed): keep its place, update its value.
      const prior = r.responses[0];
      const kv = prior && 'kvs' in prior ? prior.kvs[0] : undefined;
      if (!kv) throw new ElectionLostError(`election key ${key} vanished while campaigning`);
      createRevision = kv.createRevision;
      await this.client.txn({ compare: [{ key, target: 'CREATE', createRevision }], success: [{ put: { key, value: Buffer.from(value), lease: this.session.lease } }] });
    }
    this.own = { key: key.toString(), createRevision };
    try {
      await this.waitForPredecessors(createRevision, signal);
    } catch (e) {
      await this.resign().catch(() => {});
      throw e;
    }
    this.leading = true;
    return this.own;
  }

  /** Until no key of the election created before `createRevision` is left. */
  private async waitForPredecessors(createRevision: number, signal?: AbortSignal): Promise<void> {
    const start = Buffer.from(this.prefix);
    const end = prefixEnd(start);
    for (;;) {
      if (signal?.aborted) throw new ElectionLostError('campaign aborted');
      if (!this.session.alive) throw new ElectionLostError('the etcd session ended while campaigning');
      const r = await this.client.range(start, end, { maxCreateRevision: createRevision - 1, sort: { target: 'CREATE', order: 'DESCEND' }, limit: 1 });
      const before = r.kvs[0];
      if (!before) return;
      await this.waitDeleted(before.key, r.revision, signal);
    }
  }

  private waitDeleted(key: Buffer, fromRevision: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const finish = (e?: Error) => {
        watcher.stop();
        signal?.removeEventListener('abort', onAbort);
        if (e) reject(e); else resolve();
      };
      const onAbort = () => finish(new ElectionLostError('campaign aborted'));
      const watcher = this.client.watch({ key, startRevision: fromRevision }, {
        onEvents: (events) => { if (events.some((e) => e.type === 'DELETE')) finish(); },
        // The revision was compacted: look again (the range answers at the newest revision).
        onCompacted: () => finish(),
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      void this.session.lost.then(() => finish(new ElectionLostError('the etcd session ended while campaigning')));
    });
  }

  /** Gives up leadership (or the candidacy): the next candidate takes over at once. */
  async resign(): Promise<void> {
    const own = this.own;
    this.leading = false;
    this.own = undefined;
    if (!own) return;
    await this.client.txn({
      compare: [{ key: Buffer.from(own.key), target: 'CREATE', createRevision: own.createRevision }],
      success: [{ deleteKey: Buffer.from(own.key) }],
    });
  }

  /** The leader now, undefined when there is none. */
  async leader(): Promise<ElectionLeader | undefined> {
    const start = Buffer.from(this.prefix);
    const r = await this.client.range(start, prefixEnd(start), { sort: { target: 'CREATE', order: 'ASCEND' }, limit: 1 });
    return r.kvs[0] ? leaderOf(r.kvs[0]) : undefined;
  }

  /**
   * Calls `onLeader` with the leader now and on every change of it
   * (undefined: none). Survives etcd outages (the watch resumes; the leader is
   * read again). Returns a function that stops observing.
   */
  observe(onLeader: (leader: ElectionLeader | undefined) => void, onError?: (e: EtcdCallError) => void): () => void {
    let stopped = false;
    let last: string | undefined = '';
    let reading = false;
    let again = false;
    const read = async () => {
      if (reading) { again = true; return; }
      reading = true;
      try {
        do {
          again = false;
          try {
            const l = await this.leader();
            const id = l ? `${l.key}@${l.createRevision}=${l.value}` : undefined;
            if (!stopped && id !== last) { last = id; onLeader(l); }
          } catch (e) {
            if (e instanceof EtcdCallError) onError?.(e);
            again = !stopped;
            if (again) await new Promise((r) => setTimeout(r, 500));
          }
        } while (again && !stopped);
      } finally {
        reading = false;
      }
    };
    const start = Buffer.from(this.prefix);
    let watcher: EtcdWatcher | undefined;
    const watch = (fromRevision: number) => {
      watcher = this.client.watch({ key: start, rangeEnd: prefixEnd(start), startRevision: fromRevision }, {
        onEvents: () => { void read(); },
        onCompacted: (rev) => { void read(); if (!stopped) watch(rev + 1); },
        onError,
        onSynced: () => { void read(); },
      });
    };
    void (async () => {
      let rev = 0;
      for (let i = 0; !stopped; i++) {
        try {
          rev = (await this.client.range(start, prefixEnd(start), { countOnly: true })).revision;
          break;
        } catch (e) {
          if (e instanceof EtcdCallError) onError?.(e);
          await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** i, 2000)));
        }
      }
      if (!stopped) watch(rev + 1);
    })();
    return () => { stopped = true; watcher?.stop(); };
  }
}
