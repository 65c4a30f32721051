/**
 * Address allocation and the lease table.
 *
 * A client is identified by its hardware address (chaddr), not by its client
 * identifier: a compute node's PXE ROM, iPXE and installed OS send different
 * option 61 values (or none), and the node must keep ONE address across all
 * three. Clients without a hardware address (InfiniBand, hlen 0) are
 * identified by their client identifier instead (RFC 4390).
 *
 * With a single-process store, offers live in memory only (an OFFER promises
 * nothing durable); a lease is written to the store, and so to disk, before
 * its ACK leaves. With a shared store (several heads), the cache only
 * proposes: an address is claimed in the store (one guarded write of the
 * address and the client's index) before the OFFER leaves, and the ACK's
 * binding is a claim too, so two heads never give one address to two clients.
 */
import type { ClusterModel, Subnet } from '../../cluster/model.ts';
import type { LeaseRecord } from '../../cluster/types.ts';
import { cidrContains, intToIp, ipToInt, isIpv4 } from '../../net/ipv4.ts';
import type { ClaimSupersede, Store } from '../../store/store.ts';

export interface Offer {
  readonly ip: number;
  readonly clientKey: string;
  readonly expiresAt: number;
}

export interface LeaseTimes {
  readonly offerMs: number;
  readonly declineMs: number;
  /** Counts claims by outcome (`won`, `lost`), shared store only. */
  readonly claimed?: (outcome: 'won' | 'lost') => void;
}

/** The fields of a lease that come from the request (the table adds address, state and times). */
export type LeaseFields = Omit<LeaseRecord, 'ip' | 'state' | 'expiresAt' | 'updatedAt'>;

/** The store refused a claim: another client (through another head) holds the address now. */
export class ClaimLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClaimLostError';
  }
}

/** Claims one request may make before it gives up (each lost one means another head took the address first). */
export const CLAIM_TRIES = 4;

/** Whether a lease record gives its address to `clientKey` at `now` (its unexpired offer or binding). */
function holds(lease: LeaseRecord, clientKey: string, now: number): boolean {
  return (lease.state === 'bound' || lease.state === 'offered') && lease.expiresAt > now && clientKeyOf(lease) === clientKey;
}

/** Whether a lease record keeps `clientKey` off its address at `now`. */
function blocks(lease: LeaseRecord, clientKey: string, now: number): boolean {
  if (lease.expiresAt <= now || lease.state === 'released') return false;
  return lease.state === 'declined' || clientKeyOf(lease) !== clientKey;
}

/** Most leases (bound or quarantined) one relay port, relay or interface may hold; unset = no limit. */
export interface LeaseLimits {
  readonly perPort?: number;
  readonly perRelay?: number;
  readonly perInterface?: number;
}

export type LimitName = 'port' | 'relay' | 'interface';

/** Where a request came from, as the limits count it. */
export interface Placement {
  /** giaddr; 0 when not relayed. */
  readonly relay: number;
  /** The head's interface it arrived on (counted only when not relayed). */
  readonly iface: string | undefined;
  /** `portKeyOf` the request; undefined without option 82 circuit or remote id (or when that limit is off). */
  readonly port: string | undefined;
}

/** Where a lease was given, as its record keeps it. */
export type PlacementFields = Pick<LeaseRecord, 'relay' | 'interface' | 'circuitId' | 'remoteId'>;

/**
 * Largest share of a pool that DECLINEs may quarantine at once. Past it a
 * DECLINE still ends the holder's lease but quarantines nothing, so DECLINEs
 * cannot take the pool out of service.
 */
const QUARANTINE_SHARE = 0.25;

/** Why an address is not available to a client; undefined when it is. */
export type Unavailable = 'reserved-for-other' | 'leased-to-other' | 'declined' | 'offered-to-other' | 'remembered-for-other' | 'outside-pool' | 'wrong-subnet' | 'infrastructure';

export class LeaseTable {
  /** Active or remembered lease per address (store-backed). */
  private byIp = new Map<number, LeaseRecord>();
  /** Latest address per client key, for giving a returning client its old address. */
  private byClient = new Map<string, number>();
  private offers = new Map<number, Offer>();
  private offerByClient = new Map<string, Offer>();
  private pruneAt = 4096;
  /** Next pool position to try, per subnet, so allocation does not rescan from the start. */
  private cursors = new Map<Subnet, number>();
  /** Addresses with a declined record (quarantined or once quarantined), for the quarantine cap. */
  private quarantined = new Set<number>();
  /** Addresses whose record names the relay port / relay / interface, kept only when that limit is set. */
  private byPort = new Map<string, Set<number>>();
  private byRelay = new Map<number, Set<number>>();
  private byInterface = new Map<string, Set<number>>();
  /** The store is shared by several heads: the store decides every claim. */
  readonly shared: boolean;

  /**
   * `cursorStart`: where in each pool this table starts looking for a free
   * address (a number reduced modulo the pool's size). Several heads each
   * start at their own place, so they do not all propose, and race for, the
   * same next address.
   */
  constructor(private readonly model: ClusterModel, private readonly store: Store, private readonly times: LeaseTimes, private readonly limits: LeaseLimits = {}, private readonly cursorStart = 0) {
    this.shared = store.shared;
    for (const lease of store.values('leases')) this.index(lease);
    store.onChange((c) => {
      if (c.collection !== 'leases') return;
      const ip = ipToInt(c.key);
      const old = this.byIp.get(ip);
      if (old) this.unindex(old, ip);
      if (c.value) this.index(c.value as LeaseRecord, ip);
    });
  }

  private index(lease: LeaseRecord, ip = ipToInt(lease.ip)): void {
    this.byIp.set(ip, lease);
    if (lease.state !== 'declined') this.byClient.set(clientKeyOf(lease), ip);
    else this.quarantined.add(ip);
    const l = this.limits;
    if (l.perPort !== undefined && (lease.circuitId || lease.remoteId)) addTo(this.byPort, portKeyOf(lease), ip);
    if (l.perRelay !== undefined && lease.relay) addTo(this.byRelay, ipToInt(lease.relay), ip);
    if (l.perInterface !== undefined && lease.interface && !lease.relay) addTo(this.byInterface, lease.interface, ip);
  }

  private unindex(old: LeaseRecord, ip: number): void {
    if (this.byClient.get(clientKeyOf(old)) === ip) this.byClient.delete(clientKeyOf(old));
    this.byIp.delete(ip);
    this.quarantined.delete(ip);
    const l = this.limits;
    if (l.perPort !== undefined && (old.circuitId || old.remoteId)) this.byPort.get(portKeyOf(old))?.delete(ip);
    if (l.perRelay !== undefined && old.relay) this.byRelay.get(ipToInt(old.relay))?.delete(ip);
    if (l.perInterface !== undefined && old.interface) this.byInterface.get(old.interface)?.delete(ip);
  }

  lease(ip: number): LeaseRecord | undefined {
    return this.byIp.get(ip);
  }

  leaseOfClient(clientKey: string): LeaseRecord | undefined {
    const ip = this.byClient.get(clientKey);
    return ip === undefined ? undefined : this.byIp.get(ip);
  }

  /**
   * Whether `ip` may be given to `clientKey` on `subnet` now; undefined if yes.
   * A reserved node may only have its reservation; others only pool addresses.
   */
  check(ip: number, clientKey: string, subnet: Subnet, reservedIp: number | undefined, now: number): Unavailable | undefined {
    if (!cidrContains(subnet.cidr, ip)) return 'wrong-subnet';
    if (reservedIp !== undefined) return ip === reservedIp ? undefined : 'reserved-for-other';
    const owner = this.model.nodeByIp(ip);
    if (owner) return 'reserved-for-other';
    if (!subnet.pool || ip < subnet.pool.start || ip > subnet.pool.end) return 'outside-pool';
    if (ip === subnet.cidr.network || ip === subnet.broadcast || ip === subnet.router || ip === this.model.headAddress) return 'infrastructure';
    const lease = this.byIp.get(ip);
    if (lease && lease.expiresAt > now) {
      if (lease.state === 'declined') return 'declined';
      if (lease.state === 'bound' && clientKeyOf(lease) !== clientKey) return 'leased-to-other';
      // Another head's claim for its OFFER (shared store).
      if (lease.state === 'offered' && clientKeyOf(lease) !== clientKey) return 'offered-to-other';
    }
    // The store's record giving the address to this client outranks a local offer to another (a stale one, shared store).
    const offer = this.offers.get(ip);
    if (offer && offer.expiresAt > now && !(lease && holds(lease, clientKey, now))) return offer.clientKey === clientKey ? undefined : 'offered-to-other';
    // A released or expired lease is kept for its last owner while the pool has other addresses (see freeAddress).
    if (lease && lease.state !== 'declined' && clientKeyOf(lease) !== clientKey) return 'remembered-for-other';
    return undefined;
  }

  /**
   * Picks an address for a DISCOVER: the reservation; else the client's
   * previous address; else the one it asked for; else a free pool address
   * (never-used first, then the longest-expired).
   */
  choose(clientKey: string, subnet: Subnet, reservedIp: number | undefined, requested: number | undefined, now: number): number | undefined {
    if (reservedIp !== undefined) return cidrContains(subnet.cidr, reservedIp) ? reservedIp : undefined;
    const offered = this.offerOf(clientKey, now);
    if (offered !== undefined && !this.check(offered, clientKey, subnet, undefined, now)) return offered;
    const previous = this.byClient.get(clientKey);
    if (previous !== undefined && !this.check(previous, clientKey, subnet, undefined, now)) return previous;
    if (requested !== undefined && !this.check(requested, clientKey, subnet, undefined, now)) return requested;
    return this.freeAddress(clientKey, subnet, now);
  }

  private offerOf(clientKey: string, now: number): number | undefined {
    const o = this.offerByClient.get(clientKey);
    return o && o.expiresAt > now ? o.ip : undefined;
  }

  /**
   * A pool address nobody holds. Preference: never leased; else the lease
   * that expired (or was released) longest ago, so a returning client more
   * likely finds its old address; else, when the pool is exhausted by
   * outstanding offers, the oldest offer (an OFFER promises nothing, and a
   * flood of DISCOVERs from random MACs must not lock out real clients).
   */
  private freeAddress(clientKey: string, subnet: Subnet, now: number): number | undefined {
    const pool = subnet.pool;
    if (!pool) return undefined;
    const size = pool.end - pool.start + 1;
    let cursor = this.cursors.get(subnet) ?? pool.start + (this.cursorStart % size);
    let expired: number | undefined;
    let expiredAt = Infinity;
    let offered: number | undefined;
    let offeredUntil = Infinity;
    for (let n = 0; n < size; n++, cursor = cursor >= pool.end ? pool.start : cursor + 1) {
      const why = this.check(cursor, clientKey, subnet, undefined, now);
      if (why === 'offered-to-other') {
        // Only this head's own offers may be taken back; another head's claim stands until it expires.
        const o = this.offers.get(cursor);
        if (o && o.expiresAt < offeredUntil) { offeredUntil = o.expiresAt; offered = cursor; }
        continue;
      }
      if (why && why !== 'remembered-for-other') continue;
      const lease = this.byIp.get(cursor);
      if (!lease) {
        this.cursors.set(subnet, cursor >= pool.end ? pool.start : cursor + 1);
        return cursor;
      }
      if (lease.expiresAt < expiredAt) { expiredAt = lease.expiresAt; expired = cursor; }
    }
    if (expired !== undefined) return expired;
    if (offered !== undefined) this.withdrawOffer(this.offers.get(offered)!.clientKey);
    return offered;
  }

  offer(ip: number, clientKey: string, now: number): void {
    this.withdrawOffer(clientKey);
    // An expired offer of the address to another client: forget that client's side too, or random MACs grow offerByClient.
    const replaced = this.offers.get(ip);
    if (replaced && this.offerByClient.get(replaced.clientKey) === replaced) this.offerByClient.delete(replaced.clientKey);
    const o: Offer = { ip, clientKey, expiresAt: now + this.times.offerMs };
    this.offers.set(ip, o);
    this.offerByClient.set(clientKey, o);
    // Sweep expired offers when the table has doubled since the last sweep: amortised O(1) per offer.
    if (this.offers.size > this.pruneAt) {
      this.pruneOffers(now);
      this.pruneAt = Math.max(4096, this.offers.size * 2);
    }
  }

  /** The client chose another server, or was answered: forget what we offered it. */
  withdrawOffer(clientKey: string): void {
    const o = this.offerByClient.get(clientKey);
    if (!o) return;
    this.offerByClient.delete(clientKey);
    if (this.offers.get(o.ip) === o) this.offers.delete(o.ip);
  }

  private pruneOffers(now: number): void {
    for (const [ip, o] of this.offers) {
      if (o.expiresAt > now) continue;
      this.offers.delete(ip);
      if (this.offerByClient.get(o.clientKey) === o) this.offerByClient.delete(o.clientKey);
    }
  }

  /**
   * Writes a bound lease; resolves when it is durable (then the ACK may
   * leave). Shared store: a claim, retried while the store's record still
   * lets the client have the address (another head's offer to the same
   * client, a cache behind the store); rejects with ClaimLostError if not.
   */
  bind(ip: number, lease: Omit<LeaseRecord, 'ip' | 'state' | 'updatedAt'>, now: number): Promise<void> {
    this.withdrawOffer(clientKeyOf(lease));
    const record: LeaseRecord = { ip: intToIp(ip), ...lease, state: 'bound', updatedAt: now };
    return this.shared ? this.bindClaimed(record, now) : this.write(record);
  }

  private async bindClaimed(record: LeaseRecord, now: number): Promise<void> {
    const clientKey = clientKeyOf(record);
    // The guard's revisions are read together with the record they vouch for: a claim never overwrites a record it did not judge.
    const cached = this.store.get('leases', record.ip);
    if (cached && blocks(cached, clientKey, now)) throw new ClaimLostError(`${record.ip} is ${cached.state} to ${clientKeyOf(cached)}${cached.server ? ` by head ${cached.server}` : ''}`);
    let expect = this.store.claimRevisions(record.ip, clientKey);
    let named = this.namedFor(clientKey);
    for (let n = 0; n < CLAIM_TRIES; n++) {
      const supersede = this.supersede(named, record.ip, clientKey, now);
      const outcome = await this.store.claim(clientKey, record, expect, supersede);
      this.times.claimed?.(outcome.claimed ? 'won' : 'lost');
      if (outcome.claimed) return;
      const held = outcome.address.lease;
      if (held && blocks(held, clientKey, now)) throw new ClaimLostError(`${record.ip} is ${held.state} to ${clientKeyOf(held)}${held.server ? ` by head ${held.server}` : ''}`);
      expect = { address: outcome.address.revision, client: outcome.client.revision };
      named = outcome.client.ip !== undefined && isIpv4(outcome.client.ip) ? ipToInt(outcome.client.ip) : undefined;
    }
    throw new ClaimLostError(`${record.ip}: ${CLAIM_TRIES} claims refused (the records moved under each one)`);
  }

  /** The address the store's client index names for `clientKey` (the entry claims are guarded on). */
  private namedFor(clientKey: string): number | undefined {
    const ip = this.store.claimedBy(clientKey);
    return ip !== undefined && isIpv4(ip) ? ipToInt(ip) : undefined;
  }

  /**
   * One client, one address in the shared store: when the client's entry
   * names another address `named`, the claim is guarded on that record as
   * judged here too. An offer there that still holds (another head's; the
   * client chose this one) is released by the claim; a binding there refuses
   * it (the client is offered that address again on its next DISCOVER).
   */
  private supersede(named: number | undefined, ip: string, clientKey: string, now: number): ClaimSupersede | undefined {
    if (named === undefined || intToIp(named) === ip) return undefined;
    const at = intToIp(named);
    const revision = this.store.revision('leases', at);
    const prior = this.store.get('leases', at);
    if (!prior || !holds(prior, clientKey, now)) return { ip: at, revision };
    if (prior.state === 'bound') throw new ClaimLostError(`the client holds ${prior.ip}${prior.server ? ` from head ${prior.server}` : ''}; ${ip} is not given to it too`);
    return { ip: at, revision, lease: { ...prior, state: 'released', expiresAt: now, updatedAt: now } };
  }

  /** Whole seconds left on `ip`'s binding to `clientKey` as the cache records it; 0 when it has none. */
  boundSecondsLeft(ip: number, clientKey: string, now: number): number {
    const l = this.byIp.get(ip);
    if (!l || l.state !== 'bound' || clientKeyOf(l) !== clientKey) return 0;
    return Math.max(0, Math.floor((l.expiresAt - now) / 1000));
  }

  /**
   * Shared store: whether the store already holds `ip` for this client (its
   * own unexpired offer or binding, by any head): an OFFER of it needs no write.
   */
  heldBy(ip: number, clientKey: string, now: number): boolean {
    const l = this.byIp.get(ip);
    return l !== undefined && holds(l, clientKey, now);
  }

  /**
   * Shared store: claims an address for an OFFER before it leaves, starting
   * with `ip`, the cache's proposal. A lost claim brings the store's record
   * into the cache; the next candidate is the address the client's index
   * now names (another head claimed for it), else the cache's next choice;
   * at most CLAIM_TRIES claims. Resolves to the address held for the
   * client, undefined when none was won (no OFFER).
   */
  async claimOffer(ip: number, fields: LeaseFields, subnet: Subnet, requested: number | undefined, now: number): Promise<number | undefined> {
    const clientKey = clientKeyOf(fields);
    let candidate: number | undefined = ip;
    let clientRevision: number | undefined;
    // The address the client's entry names: as the cache has it, then as the store answered a lost claim.
    let named = this.namedFor(clientKey);
    for (let n = 0; n < CLAIM_TRIES && candidate !== undefined; n++) {
      if (this.heldBy(candidate, clientKey, now)) return candidate;
      const text = intToIp(candidate);
      // Judged free from the record at the revision the claim is guarded on (not the one seen when the request was decided).
      const cached = this.store.get('leases', text);
      const prior: LeaseRecord | undefined = named !== undefined && named !== candidate ? this.byIp.get(named) : undefined;
      const keepsBinding: boolean = prior?.state === 'bound' && holds(prior, clientKey, now) && !this.check(named!, clientKey, subnet, undefined, now);
      if (keepsBinding || (cached && blocks(cached, clientKey, now))) {
        // The client's binding elsewhere is offered again rather than replaced; a taken address is passed over.
        this.withdrawOffer(clientKey);
        candidate = keepsBinding ? named : this.choose(clientKey, subnet, undefined, requested, now);
        if (candidate !== undefined) this.offer(candidate, clientKey, now);
        continue;
      }
      const seen = this.store.claimRevisions(text, clientKey);
      const expect = clientRevision === undefined ? seen : { address: seen.address, client: clientRevision };
      const record: LeaseRecord = { ...fields, ip: text, state: 'offered', expiresAt: now + this.times.offerMs, updatedAt: now };
      const guard = prior?.state === 'bound' ? { ip: prior.ip, revision: this.store.revision('leases', prior.ip) } : this.supersede(named, text, clientKey, now);
      const outcome = await this.store.claim(clientKey, record, expect, guard);
      this.times.claimed?.(outcome.claimed ? 'won' : 'lost');
      if (outcome.claimed) return candidate;
      const held = outcome.address.lease;
      if (held && holds(held, clientKey, now)) return candidate;
      clientRevision = outcome.client.revision;
      this.withdrawOffer(clientKey);
      named = outcome.client.ip !== undefined && isIpv4(outcome.client.ip) ? ipToInt(outcome.client.ip) : undefined;
      candidate = named !== undefined && named !== candidate && !this.check(named, clientKey, subnet, undefined, now) ? named : this.choose(clientKey, subnet, undefined, requested, now);
      if (candidate !== undefined) this.offer(candidate, clientKey, now);
    }
    // No claim won: an offer left in the table would keep the address from other clients (and from a binding's owner) for offerTime.
    this.withdrawOffer(clientKey);
    return undefined;
  }

  release(ip: number, now: number): Promise<void> {
    const lease = this.byIp.get(ip);
    if (!lease) return Promise.resolve();
    return this.write({ ...lease, state: 'released', expiresAt: now, updatedAt: now });
  }

  /**
   * Stores a lease record; the store's change event (synchronous) re-indexes
   * it. Shared store: only if the record is still the one this head saw, so a
   * RELEASE or DECLINE never overwrites another head's newer claim.
   */
  private write(lease: LeaseRecord): Promise<void> {
    if (!this.shared) return this.store.put('leases', lease.ip, lease);
    const guard = { collection: 'leases' as const, key: lease.ip, revision: this.store.revision('leases', lease.ip) };
    return this.store.transact([guard], [{ op: 'put', collection: 'leases', key: lease.ip, value: lease }]).then((ok) => {
      if (!ok) throw new ClaimLostError(`${lease.ip} changed in the store before this ${lease.state} was written`);
    });
  }

  /**
   * Whether `ip` is bound now to `clientKey` with option 61 `clientId`: the
   * hardware address and the client identifier (or its absence) both those
   * of the last ACK. DHCPv4 has nothing stronger for DECLINE and RELEASE.
   */
  holds(ip: number, clientKey: string, clientId: Buffer | undefined, now: number): boolean {
    const lease = this.byIp.get(ip);
    return lease !== undefined && lease.state === 'bound' && lease.expiresAt > now && clientKeyOf(lease) === clientKey && sameClientId(lease.clientId, clientId);
  }

  /**
   * The holder found the pool address in use: keep it out of the pool for
   * `declineTime`, or, with `quarantine` false, just end the lease. The
   * record keeps the lease's placement, so a quarantine counts against the
   * port that declined it.
   */
  decline(ip: number, holder: Pick<LeaseRecord, 'mac' | 'clientId'> & PlacementFields, subnet: Subnet, quarantine: boolean, now: number): Promise<void> {
    this.withdrawOffer(clientKeyOf(holder));
    return this.write({ ...holder, ip: intToIp(ip), subnet: subnet.cidr.text, state: 'declined', expiresAt: quarantine ? now + this.times.declineMs : now, updatedAt: now });
  }

  /** Whether DECLINEs have quarantined their share of the subnet's pool (`QUARANTINE_SHARE`). */
  quarantineFull(subnet: Subnet, now: number): boolean {
    const pool = subnet.pool;
    if (!pool) return true;
    return this.quarantinedIn(subnet, now) >= Math.max(1, Math.floor((pool.end - pool.start + 1) * QUARANTINE_SHARE));
  }

  /** Addresses of `subnet` in quarantine now; forgets records that left it. */
  quarantinedIn(subnet: Subnet, now: number): number {
    let n = 0;
    for (const ip of this.quarantined) {
      const lease = this.byIp.get(ip);
      if (!lease || lease.state !== 'declined' || lease.expiresAt <= now) this.quarantined.delete(ip);
      else if (cidrContains(subnet.cidr, ip)) n++;
    }
    return n;
  }

  /**
   * The limit a new lease of `ip` for `clientKey` from `at` would exceed, if
   * any. Leases and quarantines already counted under the same port do not
   * make it new (a renewal, a returning client).
   */
  overLimit(ip: number, at: Placement, now: number): LimitName | undefined {
    const l = this.limits;
    if (l.perPort !== undefined && at.port !== undefined && this.full(this.byPort.get(at.port), ip, l.perPort, now)) return 'port';
    if (l.perRelay !== undefined && at.relay && this.full(this.byRelay.get(at.relay), ip, l.perRelay, now)) return 'relay';
    if (l.perInterface !== undefined && !at.relay && at.iface !== undefined && this.full(this.byInterface.get(at.iface), ip, l.perInterface, now)) return 'interface';
    return undefined;
  }

  /** Whether `held` has `limit` active records, `ip` not among them; drops the ones that ended. */
  private full(held: Set<number> | undefined, ip: number, limit: number, now: number): boolean {
    if (!held) return limit === 0;
    if (held.has(ip) && (this.byIp.get(ip)?.expiresAt ?? 0) > now) return false;
    let n = 0;
    for (const a of held) {
      if ((this.byIp.get(a)?.expiresAt ?? 0) <= now) held.delete(a);
      else if (++n >= limit) return true;
    }
    return n >= limit;
  }

  /** Addresses of the subnet's pool that a new client could be given now, and those bound or quarantined. */
  poolUsage(subnet: Subnet, now: number): { free: number; bound: number; declined: number } {
    let free = 0, bound = 0, declined = 0;
    const pool = subnet.pool;
    if (!pool) return { free, bound, declined };
    for (let ip = pool.start; ip <= pool.end; ip++) {
      const lease = this.byIp.get(ip);
      if (lease && lease.expiresAt > now && lease.state === 'bound') bound++;
      else if (lease && lease.expiresAt > now && lease.state === 'declined') declined++;
      else if (!this.model.nodeByIp(ip) && ip !== subnet.cidr.network && ip !== subnet.broadcast && ip !== subnet.router && ip !== this.model.headAddress) free++;
    }
    return { free, bound, declined };
  }

  /**
   * Deletes declined records of addresses outside every pool: only DECLINEs
   * made them, before those were checked, and no client can use one.
   * Returns how many went.
   */
  async pruneStrayDeclines(): Promise<number> {
    const strays: string[] = [];
    for (const [ip, lease] of this.byIp) {
      const pool = this.model.subnetForIp(ip)?.pool;
      if (lease.state === 'declined' && (!pool || ip < pool.start || ip > pool.end)) strays.push(lease.ip);
    }
    await Promise.all(strays.map((ip) => this.store.delete('leases', ip)));
    return strays.length;
  }

  /** All lease records (API, DNS of dynamic clients). */
  all(): IterableIterator<LeaseRecord> {
    return this.byIp.values();
  }
}

function addTo<K>(map: Map<K, Set<number>>, key: K, ip: number): void {
  let set = map.get(key);
  if (!set) map.set(key, set = new Set());
  set.add(ip);
}

/** Whether option 61 as sent (`sent`) is the one a lease recorded as hex (`recorded`); both absent counts as equal. */
export function sameClientId(recorded: string | undefined, sent: Buffer | undefined): boolean {
  if (recorded === undefined || sent === undefined) return recorded === undefined && sent === undefined;
  if (recorded.length !== sent.length * 2) return false;
  for (let i = 0; i < sent.length; i++) {
    if (((hexDigit(recorded.charCodeAt(2 * i)) << 4) | hexDigit(recorded.charCodeAt(2 * i + 1))) !== sent[i]) return false;
  }
  return true;
}

/** Value of a lower-case hex digit's char code; 256 (matching no byte) for anything else. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return 256;
}

/** A relay port: the relay (or, for a switch that adds option 82 without relaying, the interface) and option 82's circuit and remote ids. */
export function portKeyOf(at: PlacementFields): string {
  return `${at.relay ?? at.interface ?? ''}/${at.circuitId ?? ''}/${at.remoteId ?? ''}`;
}

/** The identity a lease belongs to: the hardware address, or the client id for clients without one. */
export function clientKeyOf(lease: Pick<LeaseRecord, 'mac' | 'clientId'>): string {
  return lease.mac ? lease.mac : `id:${lease.clientId ?? ''}`;
}
