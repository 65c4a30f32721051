/**
 * The schema of each collection's records, for records read back from disk
 * (or from another head): they are checked like API input, so a damaged or
 * foreign record stops the load instead of reaching DHCP or DNS. Nodes, hosts
 * and SRV records use the API's own schemas; leases and boot timelines, which
 * only bootherd writes, get theirs here.
 */
import { z } from 'zod';
import { ADDRESS_SOURCES, BOOT_STAGES, LEASE_STATES } from '../cluster/types.ts';
import { cidr, ipv4 } from '../config/fields.ts';
import { hostSchema, nodeSchema, srvSchema } from '../config/schema.ts';
import type { CollectionName, Collections } from './store.ts';

export const recordSource = z.enum(['config', 'api'], { error: 'expected source config or api' });
const millis = z.number({ error: 'expected milliseconds since the epoch' }).int().nonnegative();

export const leaseSchema = z.strictObject({
  ip: ipv4,
  // What DHCP saw in chaddr: up to 6 bytes (a short hlen gives fewer), or none when the client only sent option 61.
  mac: z.string().regex(/^([0-9a-f]{2}(:[0-9a-f]{2}){0,5})?$/, { error: 'expected a MAC address like 52:54:00:12:34:56, or empty' }),
  clientId: z.string().regex(/^([0-9a-f]{2})+$/, { error: 'expected the client identifier as hex' }).optional(),
  hostname: z.string().optional(),
  node: z.string().min(1).optional(),
  subnet: cidr,
  relay: ipv4.optional(),
  interface: z.string().min(1).max(15, { error: 'expected an interface name of at most 15 characters' }).optional(),
  circuitId: z.string().regex(/^([0-9a-fA-F]{2})*$/, { error: 'expected option 82 circuit id as hex' }).optional(),
  remoteId: z.string().regex(/^([0-9a-fA-F]{2})*$/, { error: 'expected option 82 remote id as hex' }).optional(),
  server: ipv4.optional(),
  state: z.enum(LEASE_STATES, { error: `expected a lease state: ${LEASE_STATES.join(', ')}` }),
  expiresAt: millis,
  updatedAt: millis,
});

export const bootTimelineSchema = z.strictObject({
  node: z.string().min(1),
  startedAt: millis,
  stages: z.array(z.strictObject({
    stage: z.enum(BOOT_STAGES, { error: `expected a boot stage: ${BOOT_STAGES.join(', ')}` }),
    at: millis,
    detail: z.string().optional(),
  })),
});

export const nodeRecordSchema = nodeSchema.extend({ source: recordSource });
export const hostRecordSchema = hostSchema.extend({ source: recordSource });
export const srvRecordSchema = srvSchema.extend({ source: recordSource });
export const addressSchema = z.strictObject({
  node: z.string().min(1),
  ip: ipv4,
  from: z.enum(ADDRESS_SOURCES, { error: `expected how the address was seen: ${ADDRESS_SOURCES.join(', ')}` }),
  at: millis,
});

export const recordSchemas: { readonly [C in CollectionName]: z.ZodType<Collections[C], unknown> } = {
  nodes: nodeRecordSchema,
  hosts: hostRecordSchema,
  srv: srvRecordSchema,
  leases: leaseSchema,
  boots: bootTimelineSchema,
  addresses: addressSchema,
};
