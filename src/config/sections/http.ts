import { z } from 'zod';
import { ipv4, port } from '../fields.ts';

/** `http:` in the cluster file: the REST API, UI, iPXE scripts and boot file downloads. */
export const httpSection = z.strictObject({
  enabled: z.boolean().default(true),
  address: ipv4.default('0.0.0.0'),
  port: port.default(80),
  /**
   * Base URL nodes use to reach this head over HTTP (iPXE scripts, kernels).
   * Default: http://<head.address>[:port].
   */
  baseUrl: z.url({ error: 'expected an http URL like http://198.18.0.1' }).optional(),
}).default({ enabled: true, address: '0.0.0.0', port: 80 });

export type HttpConfig = z.output<typeof httpSection>;
