import { z } from 'zod';
import { duration, ipv4, port } from '../fields.ts';

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
  /**
   * Who may read the API, the UI and /metrics without the bearer token:
   * `cluster` (clients with an address in one of the subnets), `any`, or
   * `none`. Changes always need the token.
   */
  readOpenTo: z.enum(['cluster', 'any', 'none'], { error: 'expected one of cluster, any, none' }).default('cluster'),
  /** Directory for api_access_log and api_error_log; default <state>/logs. Relative paths are from the cluster file. */
  logDir: z.string().min(1, { error: 'expected a directory path' }).optional(),
  /** Directory with the iPXE script templates (node.ipxe, discovery.ipxe); default boot-assets/templates. */
  templates: z.string().min(1, { error: 'expected a directory path' }).optional(),
  /** Template for MACs that belong to no node (the discovery path), a file in the templates directory. */
  unknownTemplate: z.string().regex(/^[\w.-]+$/, { error: 'expected a template file name like discovery.ipxe' }).default('discovery.ipxe'),
  /** Largest API request body in bytes; larger ones get 413. */
  bodyLimit: z.number({ error: 'expected a size in bytes' }).int().min(1024).max(16 << 20).default(65536),
  /** Seconds a client has to send its request headers; a connection still sending them then gets 408 and is closed. */
  headersTimeout: duration.pipe(z.number().int().min(1, { error: 'expected at least 1 second' })).default(10),
  /** Seconds a client has to send its whole request (headers and body); at least headersTimeout. */
  requestTimeout: duration.pipe(z.number().int().min(1, { error: 'expected at least 1 second' })).default(30),
  /** Open HTTP connections at most, from all clients; keep it well below the process's file descriptor limit (ulimit -n). */
  maxConnections: z.number({ error: 'expected a number of connections' }).int().min(1).max(1 << 20).default(4096),
  /** Open HTTP connections at most from one client address; more are closed at once. */
  maxConnectionsPerClient: z.number({ error: 'expected a number of connections' }).int().min(1).max(1 << 20).default(128),
  /** Gone: boot files are sent by sendfile(2) from the kernel's page cache, which is the cache. */
  fileCacheBytes: z.never({ error: 'no longer used: boot files are sent from the kernel\'s page cache with sendfile; remove the field' }).optional(),
  /** Serve HTTPS with this certificate and key (PEM files); iPXE needs HTTPS support built in to use it. */
  tls: z.strictObject({
    cert: z.string().min(1, { error: 'expected the path of a PEM certificate' }),
    key: z.string().min(1, { error: 'expected the path of a PEM private key' }),
  }).optional(),
}).superRefine((h, ctx) => {
  if (h.requestTimeout < h.headersTimeout) ctx.addIssue({ code: 'custom', path: ['requestTimeout'], message: `must be at least headersTimeout (${h.headersTimeout} s); the headers are part of the request` });
}).prefault({});

export type HttpConfig = z.output<typeof httpSection>;
