/**
 * Recorded DNS packets (test/vectors/dns, written by
 * scripts/record-dns-vectors.ts) and a seeded generator for fuzzing them.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../vectors/dns');

/** A vector file: a `#` line naming the tool that produced it, then hex. */
export function dnsVector(name: string): Buffer {
  const text = readFileSync(path.join(DIR, `${name}.hex`), 'utf8');
  return Buffer.from(text.split('\n').filter((l) => !l.startsWith('#')).join('').replace(/\s/g, ''), 'hex');
}

/** Every recorded query (from dig, kdig and dnsperf). */
export function dnsQueryVectors(): Buffer[] {
  return readdirSync(DIR).filter((f) => f.endsWith('-query.hex')).sort().map((f) => dnsVector(f.slice(0, -4)));
}

/** A seeded generator of integers in [0, n) (mulberry32), so a failing fuzz case can be replayed. */
export function seededRandom(seed: number): (n: number) => number {
  let state = seed | 0;
  return (n) => {
    state = (state + 0x6d2b79f5) | 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) % n;
  };
}
