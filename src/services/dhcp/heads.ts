/**
 * Which head answers a client when several heads hear it (issue 18): a
 * rendezvous hash of the MAC over the live heads' names, so each client has
 * one answering head, and when a head dies only its own clients move. A
 * client whose `secs` says it has waited is answered by every head (the
 * chosen one may be gone without the registry knowing yet). Safe either
 * way: the store's claims decide the address, not this choice.
 */

/** From this many seconds of a client's waiting (the header's `secs`), every head answers. */
export const ANSWER_ALL_AFTER_SECS = 4;

/** The heads alive now, as the server's head registry sees them (names, this head's among them). */
export interface DhcpHeads {
  readonly self: string;
  live(): readonly string[];
  /** Why this head must serve no DHCP now (its clock is off from the others'), or undefined. */
  refusal?(): string | undefined;
}

/** FNV-1a of the MAC and a head name: the weight of that head for that client. */
function weight(mac: string, head: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < mac.length; i++) h = Math.imul(h ^ mac.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0x2f, 0x01000193);
  for (let i = 0; i < head.length; i++) h = Math.imul(h ^ head.charCodeAt(i), 0x01000193);
  // A final mix, so heads whose names differ only at the end do not get neighbouring weights.
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13;
  return h >>> 0;
}

/** Where a head starts looking for free addresses in a pool (LeaseTable's cursorStart): a hash of its name. */
export function cursorStartOf(head: string): number {
  return weight('', head);
}

/**
 * The heads in the order they would answer `mac`: the first live one of this
 * list answers. Ties (equal weights) go to the lower name, so every head agrees.
 */
export function answerOrder(mac: string, heads: readonly string[]): string[] {
  const weights = new Map(heads.map((h) => [h, weight(mac, h)]));
  return [...heads].sort((a, b) => weights.get(b)! - weights.get(a)! || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The head that should answer `mac`, or undefined when any head should (no
 * live head known, or the client has waited `secs` >= ANSWER_ALL_AFTER_SECS).
 * The first of answerOrder, found without sorting: this runs per DISCOVER.
 */
export function answeringHead(mac: string, liveHeads: readonly string[], secs: number): string | undefined {
  if (!liveHeads.length || secs >= ANSWER_ALL_AFTER_SECS) return undefined;
  let best: string | undefined;
  let bestWeight = -1;
  for (const head of liveHeads) {
    const w = weight(mac, head);
    if (w > bestWeight || (w === bestWeight && best !== undefined && head < best)) { best = head; bestWeight = w; }
  }
  return best;
}
