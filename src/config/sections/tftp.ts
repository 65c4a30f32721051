import { z } from 'zod';
import { duration, ipv4, port } from '../fields.ts';

/** Largest blksize (RFC 2348) that fits one 1500-byte Ethernet frame: 1500 - 20 (IP) - 8 (UDP) - 4 (TFTP). */
export const ETHERNET_BLOCK_SIZE = 1468;

const int = (what: string, min: number, max: number) =>
  z.number({ error: `expected ${what}, a whole number from ${min} to ${max}` })
    .int({ error: `expected ${what}, a whole number from ${min} to ${max}` })
    .min(min, { error: `expected ${what}, at least ${min}` })
    .max(max, { error: `expected ${what}, at most ${max}` });

const seconds = (what: string, min: number, max: number) =>
  duration.refine((v) => v >= min && v <= max, { error: `expected ${what} from ${min}s to ${max}s` });

/**
 * `tftp:` in the cluster file. Files are looked up in the rendered files
 * (pxelinux.cfg/01-<mac>, ...), then `root`, then the boot file root
 * (`files:`), then the iPXE binaries in boot-assets/ipxe.
 */
export const tftpSection = z.strictObject({
  enabled: z.boolean().default(true),
  address: ipv4.default('0.0.0.0'),
  /** 69 in production; 0 picks a free port (tests). */
  port: port.default(69),
  /** An extra directory served by TFTP (e.g. pxelinux.0 and its modules); relative paths are from the cluster file. */
  root: z.string({ error: 'expected a directory path' }).min(1, { error: 'expected a directory path' }).optional(),
  /**
   * Largest blksize granted (RFC 2348): larger requests are answered with
   * this. The default fits a 1500-byte MTU; raise it only where every path
   * to the nodes carries larger frames (IP fragments are lost as a whole).
   */
  maxBlockSize: int('a block size in bytes', 512, 65464).default(ETHERNET_BLOCK_SIZE),
  /**
   * Largest windowsize granted (RFC 7440); 1 turns windows off. At most
   * 32768, half the block number space, so an ACK always names one block.
   */
  maxWindowSize: int('a window size in blocks', 1, 32768).default(64),
  /**
   * Transfers served at once. Requests beyond it wait in arrival order and
   * start as transfers finish (firmware retries its request meanwhile).
   */
  maxTransfers: int('a number of transfers', 1, 100_000).default(2000),
  /**
   * Transfers one client address may have running or waiting at once; its
   * further requests are dropped (and repeated by the client), so one host
   * cannot take every slot. A booting node needs one at a time.
   */
  maxTransfersPerClient: int('a number of transfers per client address', 1, 100_000).default(8),
  /**
   * Longest wait before a retransmission, in seconds, for clients that do
   * not ask for their own (RFC 2349 timeout; if they do, theirs is the
   * longest). bootherd waits less once it has measured the client's round
   * trip (not under 20 ms), so a packet lost on a LAN costs milliseconds.
   * Each retransmission in a row doubles the wait.
   */
  timeout: seconds('a retransmission timeout', 1, 255).default(1),
  /**
   * How long a silent client is waited for, counted in doubling timeouts:
   * with timeout 1 and retries 5, 1+2+4+8+16+32 = 63 s. A client that is
   * gone (ICMP port unreachable) is noticed at the next retransmission.
   */
  retries: int('a number of retries', 1, 16).default(5),
  /** Longest a single transfer may take, however it progresses. */
  deadline: seconds('a transfer deadline', 1, 86400).default(600),
  /** Memory for files kept loaded between transfers, in MiB; files in use are kept regardless. */
  cacheMiB: int('a cache size in MiB', 0, 65536).default(256),
}).prefault({});

export type TftpConfig = z.output<typeof tftpSection>;
