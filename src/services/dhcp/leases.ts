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
import type { Store } from '../../store/store.ts';

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

/** Why an address is not available to a client; undefined when it is. */
export type Unavailable = 'reserved-for-other' | 'leased-to-other' | 'declined' | 'offered-to-other' | 'outside-pool' | 'wrong-subnet' | 'infrastructure';

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
  /** The store is shared by several heads: the store decides every claim. */
  readonly shared: boolean;

  constructor(private readonly model: ClusterModel, private readonly store: Store, private readonly times: LeaseTimes) {
    this.shared = store.shared;
    for (const lease of store.values('leases')) this.index(lease);
    store.onChange((c) => {
      if (c.collection !== 'leases') return;
      const ip = ipToInt(c.key);
      const old = this.byIp.get(ip);
      if (old && this.byClient.get(clientKeyOf(old)) === ip) this.byClient.delete(clientKeyOf(old));
      this.byIp.delete(ip);
      if (c.value) this.index(c.value as LeaseRecord, ip);
    });
  }

  private index(lease: LeaseRecord, ip = ipToInt(lease.ip)): void {
    this.byIp.set(ip, lease);
    if (lease.state !== 'declined') this.byClient.set(clientKeyOf(lease), ip);
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
    const offer = this.offers.get(ip);
    if (offer && offer.clientKey !== clientKey && offer.expiresAt > now) return 'offered-to-other';
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
   * that expired longest ago (a returning client more likely finds its old
   * address); else, when the pool is exhausted by outstanding offers, the
   * oldest offer (an OFFER promises nothing, and a flood of DISCOVERs from
   * random MACs must not lock out real clients).
   */
  private freeAddress(clientKey: string, subnet: Subnet, now: number): number | undefined {
    const pool = subnet.pool;
    if (!pool) return undefined;
    const size = pool.end - pool.start + 1;
    let cursor = this.cursors.get(subnet) ?? pool.start;
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
      if (why) continue;
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
    for (let n = 0; n < CLAIM_TRIES; n++) {
      const outcome = await this.store.claim(clientKey, record, expect);
      this.times.claimed?.(outcome.claimed ? 'won' : 'lost');
      if (outcome.claimed) return;
      const held = outcome.address.lease;
      if (held && blocks(held, clientKey, now)) throw new ClaimLostError(`${record.ip} is ${held.state} to ${clientKeyOf(held)}${held.server ? ` by head ${held.server}` : ''}`);
      expect = { address: outcome.address.revision, client: outcome.client.revision };
    }
    throw new ClaimLostError(`${record.ip}: ${CLAIM_TRIES} claims refused (the records moved under each one)`);
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
    for (let n = 0; n < CLAIM_TRIES && candidate !== undefined; n++) {
      if (this.heldBy(candidate, clientKey, now)) return candidate;
      const text = intToIp(candidate);
      // Judged free from the record at the revision the claim is guarded on (not the one seen when the request was decided).
      const cached = this.store.get('leases', text);
      if (cached && blocks(cached, clientKey, now)) {
        this.withdrawOffer(clientKey);
        candidate = this.choose(clientKey, subnet, undefined, requested, now);
        if (candidate !== undefined) this.offer(candidate, clientKey, now);
        continue;
      }
      const seen = this.store.claimRevisions(text, clientKey);
      const expect = clientRevision === undefined ? seen : { address: seen.address, client: clientRevision };
      const record: LeaseRecord = { ...fields, ip: text, state: 'offered', expiresAt: now + this.times.offerMs, updatedAt: now };
      const outcome = await this.store.claim(clientKey, record, expect);
      this.times.claimed?.(outcome.claimed ? 'won' : 'lost');
      if (outcome.claimed) return candidate;
      const held = outcome.address.lease;
      if (held && holds(held, clientKey, now)) return candidate;
      clientRevision = outcome.client.revision;
      this.withdrawOffer(clientKey);
      const named = outcome.client.ip !== undefined && isIpv4(outcome.client.ip) ? ipToInt(outcome.client.ip) : undefined;
      candidate = named !== undefined && named !== candidate && !this.check(named, clientKey, subnet, undefined, now) ? named : this.choose(clientKey, subnet, undefined, requested, now);
      if (candidate !== undefined) this.offer(candidate, clientKey, now);
    }
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

  /** The client found the address in use: keep it out of the pool for a while. */
  decline(ip: number, clientKey: string, mac: string, subnet: Subnet, now: number): Promise<void> {
    this.withdrawOffer(clientKey);
    return this.write({ ip: intToIp(ip), mac, subnet: subnet.cidr.text, state: 'declined', expiresAt: now + this.times.declineMs, updatedAt: now });
  }

  /** All lease records (API, DNS of dynamic clients). */
  all(): IterableIterator<LeaseRecord> {
    return this.byIp.values();
  }
}

/** The identity a lease belongs to: the hardware address, or the client id for clients without one. */
export function clientKeyOf(lease: Pick<LeaseRecord, 'mac' | 'clientId'>): string {
  return lease.mac ? lease.mac : `id:${lease.clientId ?? ''}`;
}
