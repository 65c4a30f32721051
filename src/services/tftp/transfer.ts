/**
 * One read transfer as a state machine: which DATA to send for each ACK, and
 * what to do when the client falls silent. No sockets and no clock of its
 * own: the service passes the time in and gives it a `send` function, so the
 * unit tests drive it packet by packet with a fake clock.
 *
 * Blocks are counted as plain numbers from 1 (the first DATA) to `lastBlock`;
 * only the wire carries them modulo 65536, so a file of more than 65,535
 * blocks rolls over to block 0 and continues (the convention of tftp-hpa,
 * curl, atftp and iPXE).
 *
 * Windows (RFC 7440): the server sends `windowSize` blocks and waits for one
 * ACK. An ACK of the window's last block opens the next window; an ACK of an
 * earlier block means the client lost the one after it, and the next window
 * starts there. With windowSize 1 this is RFC 1350's lockstep.
 *
 * Retransmission: the wait follows the measured round trip (RFC 6298's
 * estimator, sampled only from windows sent once: Karn's rule), between
 * MIN_TIMEOUT_MS and `timeoutMs`, so a block lost on a LAN costs
 * milliseconds, not seconds. `timeoutMs` is the client's RFC 2349 timeout
 * when it asked for one (curl asks for 6 s): we never wait longer than the
 * client asked, but we do not wait 6 s for a packet that a 0.2 ms round trip
 * says is lost; retransmitting early is harmless because duplicates never
 * multiply (below). Each timeout in a row doubles the wait; the transfer is
 * given up when the client has been silent for `patienceMs`.
 *
 * The OACK is retransmitted on a timer only to a client that declared its
 * own retransmission interval (the RFC 2349 timeout option), and only once
 * the client has been silent for twice that interval, then at each further
 * interval. A client that lost the OACK repeats its request (answered with
 * the OACK again), and one that lost its ACK 0 should repeat the ACK; but
 * curl repeats that ACK only every 72 s while declaring 6 s, so without the
 * timer a lost ACK 0 stalls it past our start bound. Clients that declare
 * nothing get no timer: atftp (which declares no timeout) aborts on any
 * second OACK, as it does with tftpd-hpa, which resends it to everyone.
 * Either first packet (OACK or DATA 1) is resent by timer at most
 * MAX_START_RESENDS times before the client acknowledges it.
 *
 * Duplicate ACKs and the Sorcerer's Apprentice (RFC 1123 4.2.3.1): if every
 * duplicate ACK made the server send the window again, one delayed ACK would
 * double every later window for the rest of the transfer (each copy of a
 * window draws its own ACK). A duplicate ACK (one that acknowledges the block
 * before the current window, i.e. the ACK that opened it) is therefore
 * ignored while it could be such an echo: within half the current timeout of
 * the window's last transmission. A duplicate arriving later says the client
 * waited in vain (its own timer fired first), and the window is sent again
 * at once, as our own timeout would; that transmission restarts the
 * holdoff, so no burst of duplicates can make a window go out twice.
 */
import { encodeDataHeader } from '../../../protocols/tftp/codec.ts';

/** The shortest wait before a retransmission, however fast the client answers. */
export const MIN_TIMEOUT_MS = 20;
/**
 * Until the client acknowledges our first packet (OACK or DATA 1), the timer
 * sends it at most this many times more: the request may be forged, and its
 * victim must not draw more than a few packets per request (a real client
 * that lost them repeats its request, which is answered each time).
 */
export const MAX_START_RESENDS = 2;

export interface TransferParams {
  readonly blockSize: number;
  readonly windowSize: number;
  /** Longest wait before a retransmission, in ms (before backoff); also the wait until the first round trip is measured. */
  readonly timeoutMs: number;
  /** Give up after this long without progress, in ms. */
  readonly patienceMs: number;
  /**
   * Give up after this long if the first packet (OACK or DATA 1) is never
   * acknowledged, in ms, whatever timeout the client asked for: an
   * unacknowledged request holds a transfer slot only this long.
   */
  readonly startPatienceMs: number;
  /**
   * The client's declared retransmission interval (RFC 2349 timeout), in ms,
   * if it declared one: the OACK is then resent after twice it, and after
   * each further interval, until acknowledged. Undefined: never by timer.
   */
  readonly oackRetransmitMs?: number;
  /** Longest the whole transfer may take, in ms. */
  readonly deadlineMs: number;
}

/** Sends one packet to the client; `payload` (a view of the file) follows `head` on the wire. */
export type Send = (head: Buffer, payload?: Buffer) => void;

/** What an ACK did. */
export type AckResult =
  | 'progress'   // the next window went out
  | 'complete'   // the last block was acknowledged: the transfer is done
  | 'duplicate'  // the ACK that opened this window, again, within the holdoff: ignored
  | 'resent'     // a late duplicate: the window went out again
  | 'stale';     // an ACK outside the window (old, or not ours): ignored

/** What the passing of time did. */
export type TickResult = 'waiting' | 'resent' | 'timed-out' | 'deadline';

export class Transfer {
  /** Number of the final DATA block (shorter than blockSize, possibly empty). */
  readonly lastBlock: number;
  /** First block of the current window: everything before it is acknowledged. */
  private windowStart = 1;
  /** Last block sent in the current window. */
  private sentUpTo = 0;
  /** When the current window (or the OACK) last went out. */
  private sentAt: number;
  /** Whether the current window went out more than once (then its ACK gives no round-trip sample). */
  private resent = false;
  /** When the client last acknowledged something new. */
  private progressAt: number;
  /** Smoothed round trip and its variation, ms (RFC 6298); srtt < 0 until the first sample. */
  private srtt = -1;
  private rttvar = 0;
  /** Wait before retransmitting, before backoff. */
  private rto: number;
  /** Doubles with each timeout in a row. */
  private backoff = 1;
  private phase: 'oack' | 'data' | 'done';
  private readonly startedAt: number;
  /** DATA packets sent, first transmissions and retransmissions. */
  blocksSent = 0;
  /** DATA packets (or OACKs) sent again after a timeout or a late duplicate ACK. */
  retransmitted = 0;
  /** Timer retransmissions of the first packet before the client acknowledged it (at most MAX_START_RESENDS). */
  private startResends = 0;

  /**
   * @param data the whole file (for netascii, already converted); shared, never modified
   * @param oack the OACK to send first, or undefined to start with DATA 1
   */
  constructor(
    private readonly data: Buffer,
    private readonly params: TransferParams,
    private readonly send: Send,
    private readonly oack: Buffer | undefined,
    now: number,
  ) {
    this.lastBlock = Math.floor(data.length / params.blockSize) + 1;
    this.phase = oack ? 'oack' : 'data';
    this.startedAt = now;
    this.sentAt = now;
    this.progressAt = now;
    this.rto = params.timeoutMs;
  }

  get done(): boolean { return this.phase === 'done'; }
  /** Whether the client has acknowledged our first packet (the OACK or DATA 1). */
  get started(): boolean { return this.phase === 'done' || this.windowStart > 1 || (this.phase === 'data' && this.oack !== undefined); }
  /** Bytes of the file the client has acknowledged. */
  get bytesAcknowledged(): number { return Math.min((this.windowStart - 1) * this.params.blockSize, this.data.length); }
  /** Current wait before a retransmission, ms. */
  get timeout(): number { return this.rto * this.backoff; }

  /** Sends the OACK or the first window. */
  start(now: number): void {
    if (this.oack) { this.send(this.oack); this.sentAt = now; } else this.sendWindow(now);
  }

  onAck(block: number, now: number): AckResult {
    if (this.phase === 'done') return 'stale';
    if (this.phase === 'oack') {
      // RFC 2347: the client accepts the OACK with ACK 0.
      if (block !== 0) return 'stale';
      this.phase = 'data';
      this.progressed(now);
      this.sendWindow(now);
      return 'progress';
    }
    const before = this.windowStart - 1;
    const ahead = (block - before) & 0xffff;
    if (ahead > this.sentUpTo - before) return 'stale';
    if (ahead === 0) {
      if (now - this.sentAt < this.timeout / 2) return 'duplicate';
      this.resend(now);
      return 'resent';
    }
    const acked = before + ahead;
    this.windowStart = acked + 1;
    if (acked === this.lastBlock) {
      this.phase = 'done';
      return 'complete';
    }
    this.progressed(now);
    this.sendWindow(now);
    return 'progress';
  }

  /**
   * The client sent its request again: it has not heard from us. Answered
   * like a late duplicate ACK (the OACK or the first window again) until it
   * acknowledges something; after that a repeated request is an echo.
   */
  onRepeatedRequest(now: number): 'resent' | 'ignored' {
    if (this.phase === 'done' || (this.phase === 'data' && this.windowStart > 1)) return 'ignored';
    if (now - this.sentAt < this.timeout / 2) return 'ignored';
    this.resend(now);
    return 'resent';
  }

  onTick(now: number): TickResult {
    if (this.phase === 'done') return 'waiting';
    if (now - this.startedAt >= this.params.deadlineMs) return 'deadline';
    // Checked before the retransmission timer, which may run the client's 255 s.
    if (!this.started && now - this.progressAt >= this.params.startPatienceMs) return 'timed-out';
    if (!this.started && this.startResends >= MAX_START_RESENDS) return 'waiting';
    if (this.phase === 'oack') {
      // Resent by timer only to a client that declared its interval, once it had time to repeat itself (see above).
      const interval = this.params.oackRetransmitMs;
      if (interval === undefined || now - this.sentAt < (this.retransmitted === 0 ? 2 * interval : interval)) return 'waiting';
      this.startResends++;
      this.resend(now);
      return 'resent';
    }
    if (now - this.sentAt < this.timeout) return 'waiting';
    if (now - this.progressAt >= this.params.patienceMs) return 'timed-out';
    this.backoff *= 2;
    if (!this.started) this.startResends++;
    this.resend(now);
    return 'resent';
  }

  /** The client acknowledged something new: sample the round trip, reset the backoff. */
  private progressed(now: number): void {
    if (!this.resent) {
      const r = now - this.sentAt;
      if (this.srtt < 0) { this.srtt = r; this.rttvar = r / 2; } else {
        this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
        this.srtt = 0.875 * this.srtt + 0.125 * r;
      }
      this.rto = Math.min(Math.max(this.srtt + 4 * this.rttvar, MIN_TIMEOUT_MS), this.params.timeoutMs);
    }
    this.backoff = 1;
    this.progressAt = now;
  }

  private resend(now: number): void {
    this.resent = true;
    if (this.phase === 'oack') {
      this.send(this.oack!);
      this.sentAt = now;
      this.retransmitted++;
      return;
    }
    const before = this.blocksSent;
    this.sendWindow(now, true);
    this.retransmitted += this.blocksSent - before;
  }

  private sendWindow(now: number, again = false): void {
    const { blockSize, windowSize } = this.params;
    const end = Math.min(this.windowStart + windowSize - 1, this.lastBlock);
    for (let n = this.windowStart; n <= end; n++) {
      const offset = (n - 1) * blockSize;
      this.send(encodeDataHeader(n), this.data.subarray(offset, Math.min(offset + blockSize, this.data.length)));
    }
    this.blocksSent += end - this.windowStart + 1;
    this.sentUpTo = end;
    this.sentAt = now;
    this.resent = again;
  }
}
