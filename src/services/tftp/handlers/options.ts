import { DEFAULT_BLOCK_SIZE, MAX_BLOCK_SIZE, MAX_WINDOW_SIZE, MIN_BLOCK_SIZE, MIN_WINDOW_SIZE } from '../../../../protocols/tftp/codec.ts';

export interface OptionLimits {
  readonly maxBlockSize: number;
  readonly maxWindowSize: number;
  /** Retransmission timeout when the client does not ask for one, in ms. */
  readonly timeoutMs: number;
}

export interface Negotiated {
  readonly blockSize: number;
  readonly windowSize: number;
  readonly timeoutMs: number;
  /** Options granted, in the client's order, for the OACK; empty means no OACK (start with DATA 1). */
  readonly granted: ReadonlyMap<string, string>;
}

function intIn(text: string, min: number, max: number): number | undefined {
  if (!/^\d{1,6}$/.test(text)) return undefined;
  const v = Number(text);
  return v >= min && v <= max ? v : undefined;
}

/**
 * RFC 2347 option negotiation for a read request: the server answers each
 * option it understands (blksize RFC 2348, timeout and tsize RFC 2349,
 * windowsize RFC 7440) with the value it will use, and leaves out the others,
 * including invalid values, which it ignores rather than fail the transfer.
 * blksize and windowsize are lowered to the configured limits; `size` is the
 * number of bytes the transfer will carry (after netascii conversion).
 */
export function negotiate(options: ReadonlyMap<string, string>, size: number, limits: OptionLimits): Negotiated {
  let blockSize = DEFAULT_BLOCK_SIZE;
  let windowSize = 1;
  let timeoutMs = limits.timeoutMs;
  const granted = new Map<string, string>();
  for (const [name, value] of options) {
    switch (name) {
      case 'blksize': {
        const v = intIn(value, MIN_BLOCK_SIZE, MAX_BLOCK_SIZE);
        if (v === undefined) break;
        blockSize = Math.min(v, limits.maxBlockSize);
        granted.set(name, String(blockSize));
        break;
      }
      case 'windowsize': {
        const v = intIn(value, MIN_WINDOW_SIZE, MAX_WINDOW_SIZE);
        if (v === undefined) break;
        windowSize = Math.min(v, limits.maxWindowSize);
        granted.set(name, String(windowSize));
        break;
      }
      case 'timeout': {
        const v = intIn(value, 1, 255);
        if (v === undefined) break;
        timeoutMs = v * 1000;
        granted.set(name, String(v));
        break;
      }
      case 'tsize':
        // A reading client sends 0 and learns the size in the OACK.
        if (!/^\d{1,20}$/.test(value)) break;
        granted.set(name, String(size));
        break;
      default:
        break;
    }
  }
  return { blockSize, windowSize, timeoutMs, granted };
}
