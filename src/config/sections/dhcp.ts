import { z } from 'zod';
import { duration, port } from '../fields.ts';

const leaseLimit = z.number({ error: 'expected a number of leases, like 4' })
  .refine(Number.isInteger, { error: 'expected a whole number of leases, like 4' })
  .refine((n) => n >= 1, { error: 'expected at least 1 lease (leave the field out for no limit)' });

/** `dhcp:` in the cluster file. Subnets (with their interfaces and pools) are top-level: DNS and NTP use them too. */
export const dhcpSection = z.strictObject({
  enabled: z.boolean().default(true),
  /** Server port; 67 in production, another for tests on loopback. */
  port: port.default(67),
  /** Port replies go to (68), unless relayed. */
  clientPort: port.default(68),
  /** The PXE boot server port (4011), opened when a subnet is `mode: proxy`: firmware asks it for the boot file once the site's server gave the address. */
  bootServerPort: port.default(4011),
  /** Default lease time, for subnets that do not set their own. */
  leaseTime: duration.default(43200),
  /** How long an OFFERed address is held for the client that was offered it. */
  offerTime: duration.default(60),
  /** How long an address a client DECLINEd (found in use) stays out of the pool. */
  declineTime: duration.default(600),
  /**
   * Several heads: a head whose clock is off by more than this from most of
   * the other live heads serves no DHCP (lease and offer expiries are
   * compared across heads).
   */
  maxClockSkew: duration.default(2),
  /**
   * Authoritative servers NAK requests for addresses they do not know on
   * their own subnets (RFC 2131 4.3.2); a non-authoritative one stays silent.
   */
  authoritative: z.boolean().default(true),
  /** Whether machines without a reservation get boot options (the discovery path) or only an address. */
  bootUnknown: z.boolean().default(true),
  /**
   * Most pool leases (bound or quarantined) one source may hold, against
   * starvation by a machine inventing MACs; reservations do not count. Unset: no limit.
   */
  limits: z.strictObject({
    /** Per relay port: option 82 circuit id and remote id (with the relay or interface). */
    perPort: leaseLimit.optional(),
    /** Per relay (giaddr). */
    perRelay: leaseLimit.optional(),
    /** Per head interface, for requests not relayed. */
    perInterface: leaseLimit.optional(),
  }).default({}),
}).prefault({});

export type DhcpConfig = z.output<typeof dhcpSection>;
