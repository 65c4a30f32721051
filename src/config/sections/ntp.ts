import { z } from 'zod';
import { duration, ipv4, port, serverAddress } from '../fields.ts';

/** An upstream time server: "192.0.2.10" or "192.0.2.10:1123". */
const upstream = serverAddress(123, 'expected an NTP server as an IPv4 address, optionally with a port, like 192.0.2.10 or 192.0.2.10:123');

const interval = duration.refine((v) => v >= 1, { error: 'expected an interval of at least 1 second, like 16s or 64' });

/**
 * Per-client response rate limit (token bucket per source address). Over the
 * limit, one request in 2^leak is answered with a RATE kiss-o'-death and the
 * rest are dropped: a spoofed flood is never reflected at more than a
 * fraction of its own size.
 */
const rateLimit = z.strictObject({
  enabled: z.boolean().default(true),
  /** Sustained replies per second allowed to one client address. */
  rate: z.number({ error: 'expected replies per second per client, like 1 or 0.5' }).positive({ error: 'expected a positive number of replies per second' }).default(1),
  /** Replies a quiet client may take back to back (chronyd's iburst sends 4-8). */
  burst: z.number().int({ error: 'expected a whole number of replies, like 16' }).min(1, { error: 'burst must be at least 1' }).max(1024, { error: 'burst is at most 1024' }).default(16),
  /** Over the limit, answer one request in 2^leak with a RATE kiss-o'-death. */
  leak: z.number().int({ error: 'expected a whole number 1-8' }).min(1, { error: 'leak must be 1-8 (1 answers every second excess request)' }).max(8, { error: 'leak must be 1-8' }).default(2),
  /** Client addresses tracked at once (memory bound); rounded up to a power of two. */
  clients: z.number().int().min(256, { error: 'track at least 256 clients' }).max(1 << 22, { error: 'at most 4194304 clients' }).default(65536),
}).prefault({});

/** `ntp:` in the cluster file. Head nodes themselves are listed in the top-level `heads:`. */
export const ntpSection = z.strictObject({
  enabled: z.boolean().default(true),
  address: ipv4.default('0.0.0.0'),
  port: port.default(123),
  /** Time servers this head follows, polled as an NTP client. Empty: the heads keep time among themselves. */
  upstreams: z.array(upstream).default([]),
  /** How often each upstream is polled (after a quick start of 4 polls 2 s apart). */
  pollInterval: interval.default(64),
  /** How often the other heads (top-level `heads:`) are polled: it bounds how fast a dead leader is noticed. */
  headPollInterval: interval.default(16),
  /**
   * With no usable upstream, serve this head's own clock as a local reference
   * at this stratum instead of saying "unsynchronised" (stratum 16). With
   * several heads, the elected head serves at this stratum (default 10).
   */
  localStratum: z.number({ error: 'expected a stratum 1-15, like 10' }).int({ error: 'expected a whole stratum 1-15' }).min(1, { error: 'expected a stratum 1-15' }).max(15, { error: 'expected a stratum 1-15 (16 means unsynchronised)' }).optional(),
  rateLimit,
  /**
   * Threads answering on the port, each with its own socket (SO_REUSEPORT:
   * the kernel spreads clients over them). 1 answers in the main thread.
   */
  workers: z.number().int({ error: 'expected a whole number of threads, like 1 or 2' }).min(1, { error: 'expected at least 1 worker' }).max(64, { error: 'at most 64 workers' }).default(1),
}).prefault({});

export type NtpConfig = z.output<typeof ntpSection>;
export type NtpUpstream = NtpConfig['upstreams'][number];
