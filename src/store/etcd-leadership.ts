/**
 * One leader duty decided by etcd's election (src/store/etcd-election.ts):
 * this head campaigns under its name for as long as it runs, and every head
 * observes who leads. The NTP service takes the elected head as its time
 * source when no upstream is reachable, so the head NTP elects is the one
 * etcd names. A lost session (etcd unreachable past the lease) starts a new
 * campaign once etcd answers again.
 */
import type { Logger } from '../log.ts';
import { EtcdSession, type EtcdClient } from './etcd-client.ts';
import { EtcdElection } from './etcd-election.ts';

export class EtcdLeadership {
  /** The head etcd names now; undefined while unknown. */
  leader: string | undefined;
  private stopped = false;
  private session: EtcdSession | undefined;
  private election: EtcdElection | undefined;
  private unobserve: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private readonly log: Logger;

  constructor(private readonly client: EtcdClient, readonly prefix: string, private readonly self: string, log: Logger, private readonly ttlSeconds = 5) {
    this.log = log.child({ component: 'election', election: prefix });
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.running = this.campaignLoop();
  }

  private async campaignLoop(): Promise<void> {
    while (!this.stopped) {
      try {
        const session = await EtcdSession.create(this.client, this.ttlSeconds);
        this.session = session;
        const election = new EtcdElection(this.client, session, this.prefix);
        this.election = election;
        this.unobserve?.();
        this.unobserve = election.observe((l) => {
          const name = l?.value;
          if (name !== this.leader) this.log.info({ leader: name }, name ? `etcd elects ${name}` : 'etcd names no leader');
          this.leader = name;
        });
        await election.campaign(this.self);
        if (this.stopped) break;
        this.log.info({ head: this.self }, 'this head leads');
        await session.lost;
        if (!this.stopped) this.log.warn('this head\'s etcd session was lost; campaigning again');
      } catch (e) {
        if (this.stopped) break;
        this.log.debug({ err: (e as Error).message }, 'campaign failed; retrying');
        await this.session?.close().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  status(): object {
    return { prefix: this.prefix, leader: this.leader, self: this.self, leading: this.election?.fence !== undefined };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unobserve?.();
    // Closing the session revokes its lease: the campaign key goes, the next head leads at once.
    await this.session?.close().catch(() => undefined);
    await this.running;
  }
}
