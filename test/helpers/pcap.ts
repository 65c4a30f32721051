/**
 * Reads UDP datagrams out of a classic pcap file written by tcpdump (Ethernet
 * link type). Enough for recording codec vectors and checking what crossed a
 * lab link; not a general pcap library.
 */
import { readFileSync } from 'node:fs';

export interface CapturedDatagram {
  readonly src: string;
  readonly dst: string;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload: Buffer;
}

const ip = (b: Buffer, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

export function readPcapUdp(file: string): CapturedDatagram[] {
  const buf = readFileSync(file);
  if (buf.length < 24) return [];
  const magic = buf.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const linkType = u32(20);
  const out: CapturedDatagram[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const caplen = u32(off + 8);
    const frame = buf.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    let l3 = 0;
    if (linkType === 1) { // Ethernet
      if (frame.readUInt16BE(12) !== 0x0800) continue;
      l3 = 14;
    } else if (linkType === 113) { // Linux cooked (tcpdump -i any)
      if (frame.readUInt16BE(14) !== 0x0800) continue;
      l3 = 16;
    } else continue;
    const ihl = (frame[l3]! & 15) * 4;
    if (frame[l3 + 9] !== 17) continue;
    const udp = l3 + ihl;
    const len = frame.readUInt16BE(udp + 4);
    out.push({
      src: ip(frame, l3 + 12), dst: ip(frame, l3 + 16),
      srcPort: frame.readUInt16BE(udp), dstPort: frame.readUInt16BE(udp + 2),
      payload: Buffer.from(frame.subarray(udp + 8, udp + len)),
    });
  }
  return out;
}
