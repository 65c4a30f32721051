import { z } from 'zod';
import { ipv4, port } from '../fields.ts';

/** `dns:` in the cluster file. */
export const dnsSection = z.strictObject({
  enabled: z.boolean().default(true),
  address: ipv4.default('0.0.0.0'),
  port: port.default(53),
}).default({ enabled: true, address: '0.0.0.0', port: 53 });

export type DnsConfig = z.output<typeof dnsSection>;
