/**
 * Deterministic junk for fuzz tests: a seeded PRNG, random datagrams, and
 * mutations of real packets (bit flips, truncation, random tails). Used by the
 * codec fuzz tests and by udp-fuzz.ts, which sends the same junk over a lab link.
 */

/** xorshift32: fast, seeded, good enough to drive a fuzzer. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
}

export function randomBytes(rand: () => number, length: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = rand() & 255;
  return b;
}

/** A mutation of a real packet: flipped bytes, a truncation, or a random tail. */
export function mutate(rand: () => number, packet: Buffer): Buffer {
  const b = Buffer.from(packet);
  switch (rand() % 3) {
    case 0: {
      const flips = 1 + (rand() % 8);
      for (let i = 0; i < flips; i++) b[rand() % b.length] = rand() & 255;
      return b;
    }
    case 1:
      return b.subarray(0, rand() % b.length);
    default: {
      const at = rand() % b.length;
      randomBytes(rand, b.length - at).copy(b, at);
      return b;
    }
  }
}
