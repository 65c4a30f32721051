/**
 * Head election: which head serves as the cluster's time source when no head
 * can see real time (an upstream, or a head that follows one).
 *
 * The rule is chrony's orphan mode with the priority made explicit: the
 * leader is the first head in `heads:` order that is alive — it answered one
 * of its last few polls; a head always counts itself alive. The leader serves
 * its own clock as a local reference (stratum `localStratum`, default 10);
 * every other head follows the leader and serves one stratum below it. Every
 * head computes the same answer from the same file and what it can reach, with
 * no extra messages: the NTP polls are the heartbeat. When the leader stops
 * answering, the next listed head takes over; when it comes back, it leads
 * again (like chrony's orphan mode, the order is the order, not history).
 *
 * Real time always wins: a head that is synchronised to an upstream (stratum
 * below the local stratum) is followed like any NTP server, and the election
 * only decides among heads that all lack one.
 */

export interface HeadView {
  readonly name: string;
  readonly self: boolean;
  /** Answered one of its last polls (always true for this head). */
  readonly alive: boolean;
}

export interface ElectionResult {
  /** The elected head, or undefined when no election applies (a real-time source is in use, or a single head). */
  readonly leader: string | undefined;
  /** Serve this head's own clock as the local reference. */
  readonly localReference: boolean;
}

export interface ElectionInput {
  /** Every head in `heads:` order; empty for a single head. */
  readonly heads: readonly HeadView[];
  /** A real-time source (upstream or a head synchronised to one) is selectable. */
  readonly realTime: boolean;
  /** `ntp.localStratum` is set: a single head may serve its own clock. */
  readonly localStratumSet: boolean;
  /** The start-up polls are done, so a missing answer means a missing source, not a slow start. */
  readonly settled: boolean;
  /**
   * The head etcd's election names (several heads on etcd): it leads. When
   * etcd names none (unreachable, or no head campaigning yet), the first
   * alive head does, as without etcd.
   */
  readonly named?: string | undefined;
}

export function elect(input: ElectionInput): ElectionResult {
  if (input.realTime) return { leader: undefined, localReference: false };
  if (input.heads.length < 2) return { leader: undefined, localReference: input.localStratumSet && input.settled };
  const leader = input.heads.find((h) => h.name === input.named) ?? input.heads.find((h) => h.alive);
  if (!leader) return { leader: undefined, localReference: false };
  return { leader: leader.name, localReference: leader.self && input.settled };
}
