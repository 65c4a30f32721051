/**
 * Why protocols/dhcp is our own: the `dhcp` npm package (node-dhcp 0.2.20)
 * against our codec on the recorded real packets, for correctness (which
 * options survive a decode) and speed (decode+encode per second).
 *   node --import tsx bench/dhcp/codec.ts
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { decode, encode } from '../../protocols/dhcp/codec.ts';

interface NodeDhcpProtocol { parse(buf: Buffer): { options: Record<number, unknown> } & Record<string, unknown>; format(data: unknown): { _data: Buffer; _w: number } }
const nodeDhcp = createRequire(import.meta.url)('dhcp/lib/protocol.js') as NodeDhcpProtocol;

const { vectors } = JSON.parse(readFileSync(new URL('../../test/vectors/dhcp/recorded.json', import.meta.url), 'utf8')) as { vectors: Array<{ name: string; hex: string }> };
const packets = vectors.map((v) => ({ name: v.name, bytes: Buffer.from(v.hex, 'hex') }));

function rate(fn: () => void, ms = 1500): number {
  for (let i = 0; i < 2000; i++) fn(); // warm up
  let n = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) { for (let i = 0; i < 200; i++) fn(); n += 200; }
  return n / (ms / 1000);
}

const quiet = console.error;
console.error = () => undefined; // node-dhcp prints an error for every option it does not know
try {
  console.log('correctness on recorded packets (options our codec sees that node-dhcp loses or alters):');
  for (const p of packets) {
    const ours = decode(p.bytes);
    let theirs: ReturnType<NodeDhcpProtocol['parse']> | undefined;
    let err = '';
    try { theirs = nodeDhcp.parse(p.bytes); } catch (e) { err = (e as Error).message; }
    const lost = theirs ? [...ours.options.keys()].filter((c) => c !== 0 && c !== 255 && !(c in theirs!.options)) : [];
    const cid = ours.options.get(61);
    const cidNote = theirs && cid && typeof theirs.options[61] === 'string' && (theirs.options[61] as string).length < cid.length - 1 ? ' (61 cut short)' : '';
    console.log(`  ${p.name.padEnd(20)} ${err ? `throws: ${err}` : lost.length ? `loses ${lost.join(', ')}${cidNote}` : `ok${cidNote}`}`);
  }
  console.log('\ndecode + encode per second (one core):');
  console.log('  packet               node-dhcp      bootherd    ratio');
  let sumTheirs = 0; let sumOurs = 0;
  for (const p of packets) {
    let theirs = 0;
    try { nodeDhcp.format(nodeDhcp.parse(p.bytes)); theirs = rate(() => nodeDhcp.format(nodeDhcp.parse(p.bytes))); } catch { theirs = 0; }
    const ours = rate(() => encode(decode(p.bytes)));
    sumTheirs += theirs; sumOurs += ours;
    console.log(`  ${p.name.padEnd(20)} ${theirs ? Math.round(theirs).toString().padStart(9) : '   throws'}   ${Math.round(ours).toString().padStart(11)}   ${theirs ? (ours / theirs).toFixed(1) + '×' : '-'}`);
  }
  console.log(`  ${'mean'.padEnd(20)} ${Math.round(sumTheirs / packets.length).toString().padStart(9)}   ${Math.round(sumOurs / packets.length).toString().padStart(11)}   ${(sumOurs / sumTheirs).toFixed(1)}×`);
} finally {
  console.error = quiet;
}
