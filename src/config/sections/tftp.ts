import { z } from 'zod';
import { ipv4, port } from '../fields.ts';

/** `tftp:` in the cluster file. */
export const tftpSection = z.strictObject({
  enabled: z.boolean().default(true),
  address: ipv4.default('0.0.0.0'),
  port: port.default(69),
}).default({ enabled: true, address: '0.0.0.0', port: 69 });

export type TftpConfig = z.output<typeof tftpSection>;
