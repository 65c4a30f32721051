import { z } from 'zod';
import { ipv4, port } from '../fields.ts';

/** `ntp:` in the cluster file. */
export const ntpSection = z.strictObject({
  enabled: z.boolean().default(true),
  address: ipv4.default('0.0.0.0'),
  port: port.default(123),
}).default({ enabled: true, address: '0.0.0.0', port: 123 });

export type NtpConfig = z.output<typeof ntpSection>;
