/** Names inside records: skipping them safely (RFC 1035 4.1.4 compression). */
import { HEADER_LENGTH, MAX_LABEL_LENGTH, MAX_NAME_LENGTH } from './constants.ts';
import { DnsDecodeError } from './errors.ts';

/**
 * Skips a possibly compressed name at `start` and returns the offset after
 * it. Pointers are followed only to check them: each must point strictly
 * before the labels that led to it (so a chain always ends, and a loop is
 * impossible), never into the header, and the name it spells must fit in 255
 * octets.
 */
export function skipName(buf: Buffer, start: number): number {
  const len = buf.length;
  let p = start;
  let end = -1;
  let octets = 1;
  let floor = start;
  for (;;) {
    if (p >= len) throw new DnsDecodeError('truncated');
    const l = buf[p]!;
    if (l === 0) return end < 0 ? p + 1 : end;
    if ((l & 0xc0) === 0xc0) {
      if (p + 2 > len) throw new DnsDecodeError('truncated');
      const target = ((l & 0x3f) << 8) | buf[p + 1]!;
      if (target >= floor || target < HEADER_LENGTH) throw new DnsDecodeError('pointer');
      if (end < 0) end = p + 2;
      p = target;
      floor = target;
      continue;
    }
    if (l > MAX_LABEL_LENGTH) throw new DnsDecodeError('label-type');
    octets += l + 1;
    if (octets > MAX_NAME_LENGTH) throw new DnsDecodeError('name-too-long');
    p += l + 1;
  }
}
