#!/usr/bin/env node
// License report: every package in package-lock.json, its license, and a check
// that each is compatible with bootherd's Apache-2.0. Runs in `npm test`.
import { readFileSync } from 'node:fs';

// Permissive licenses; CC-BY-3.0/4.0 appear only on data packages (SPDX lists) used by the test tooling.
const ALLOWED = new Set(['MIT', 'ISC', 'BSD-2-Clause', 'BSD-3-Clause', 'Apache-2.0', '0BSD', 'BlueOak-1.0.0', 'CC0-1.0', 'Unlicense', 'CC-BY-3.0', 'CC-BY-4.0', 'Python-2.0']);
// Packages whose package.json has no license field, checked by reading their license file.
const REVIEWED = { 'jsonc-simple-parser': 'MIT' };
// A disjunction ("MIT OR GPL-2.0") is fine when one side is allowed: we take that one.
const ok = (expr) => expr.replace(/[()]/g, '').split(/\s+OR\s+/).some((alt) => alt.split(/\s+AND\s+/).every((l) => ALLOWED.has(l.trim())));

const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url)));
const counts = new Map();
const bad = [];
for (const [path, info] of Object.entries(lock.packages)) {
  if (!path) continue;
  const name = path.replace(/^.*node_modules\//, '');
  let license = info.license;
  if (!license) {
    try { license = JSON.parse(readFileSync(new URL(`../${path}/package.json`, import.meta.url))).license; } catch { /* optional dep not installed */ }
  }
  license = typeof license === 'string' ? license : license?.type ?? REVIEWED[name] ?? 'UNKNOWN';
  const kind = info.dev ? 'dev' : 'runtime';
  counts.set(`${license} (${kind})`, (counts.get(`${license} (${kind})`) ?? 0) + 1);
  if (!ok(license)) bad.push(`${name}@${info.version} [${kind}]: ${license}`);
}
console.log('license report (bootherd is Apache-2.0):');
for (const [l, n] of [...counts].sort()) console.log(`  ${String(n).padStart(4)}  ${l}`);
if (bad.length) {
  console.error(`incompatible or unknown licenses:\n  ${bad.join('\n  ')}`);
  process.exit(1);
}
