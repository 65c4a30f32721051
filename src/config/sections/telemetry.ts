import { z } from 'zod';
import { duration } from '../fields.ts';

const INFLUX_HINT = 'expected an InfluxDB URL like http://127.0.0.1:8086';

/** An InfluxDB base URL: http(s)://host:port, kept without a trailing slash. */
const influxUrl = z.string({ error: INFLUX_HINT }).transform((v, ctx) => {
  let url: URL;
  try { url = new URL(v.trim()); } catch {
    ctx.addIssue({ code: 'custom', message: `${INFLUX_HINT}; got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname || (url.pathname !== '/' && url.pathname !== '')) {
    ctx.addIssue({ code: 'custom', message: `${INFLUX_HINT} (scheme, host and port, no path); got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return `${url.protocol}//${url.host}`;
});

/**
 * `telemetry:` in the cluster file: the head takes telegraf's writes
 * (POST /write, /api/v2/write), and relays every accepted batch to its own
 * InfluxDB and to every other head of `heads:`, each through a queue on disk
 * (docs/telemetry.md).
 */
export const telemetrySection = z.strictObject({
  enabled: z.boolean().default(true),
  /** The InfluxDB this head writes to (1.x /write API). */
  influxdb: influxUrl.default('http://127.0.0.1:8086'),
  /** Its database; created when missing. */
  database: z.string().min(1, { error: 'expected a database name like telegraf' }).default('telegraf'),
  /** Largest write body in bytes, after gzip is undone; larger ones get 413. */
  bodyLimit: z.number({ error: 'expected a size in bytes' }).int().min(1024).max(256 << 20).default(32 << 20),
  /** Disk a target's queue may use, in bytes; batches past it are dropped, counted and logged. */
  queueBytes: z.number({ error: 'expected a size in bytes' }).int().min(1 << 20).default(1 << 30),
  /** Longest wait between delivery attempts to a target that fails. */
  maxBackoff: duration.pipe(z.number().int().min(1, { error: 'expected at least 1 second' })).default(30),
  /** Seconds between writes of bootherd's own metrics to the InfluxDB as line protocol; 0: off. */
  selfInterval: duration.default(10),
}).prefault({});

export type TelemetryConfig = z.output<typeof telemetrySection>;
