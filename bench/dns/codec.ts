/**
 * Codec micro-benchmark behind protocols/dns/README.md: our query decoder
 * against dns-packet's decode on a recorded dig query, and a response built
 * from precompiled records against dns-packet encoding the same response.
 *   node --import tsx bench/dns/codec.ts
 */
import packet from 'dns-packet';
import { Flag, Rcode } from '../../protocols/dns/constants.ts';
import { decodeQuery } from '../../protocols/dns/query.ts';
import { buildResponse, encodeSections } from '../../protocols/dns/response.ts';
import { dnsVector } from '../../test/helpers/dns-vectors.ts';

const raw = dnsVector('dig-a-query');

function rate(label: string, fn: () => unknown): void {
  for (let i = 0; i < 50_000; i++) fn(); // warm-up
  const n = 500_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(`${label.padEnd(58)} ${Math.round(n / s).toLocaleString('en').padStart(11)} /s\n`);
}

const q = decodeQuery(raw);
const srv = [
  { name: '_slurmctld._tcp.vec.test', type: 'SRV' as const, ttl: 60, data: { priority: 10, weight: 0, port: 6817, target: 'head.vec.test' } },
  { name: '_slurmctld._tcp.vec.test', type: 'SRV' as const, ttl: 60, data: { priority: 20, weight: 0, port: 6817, target: 'n002.vec.test' } },
];
const a = [{ name: 'n001.vec.test', type: 'A' as const, ttl: 60, data: '198.18.0.11' }];
const sections = encodeSections(q.name, a);
const full = { id: q.id, type: 'response' as const, flags: Flag.AA | Flag.RD, questions: [{ name: 'n001.vec.test', type: 'A' as const }], answers: a,
  additionals: [{ name: '.', type: 'OPT' as const, udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] };

rate('decode a dig query (decodeQuery)', () => decodeQuery(raw));
rate('decode a dig query (dns-packet decode)', () => packet.decode(raw));
rate('A response from precompiled records (buildResponse)', () => buildResponse(raw, q, Flag.AA, Rcode.NOERROR, sections, 1232));
rate('A response (dns-packet encode)', () => packet.encode(full));

const srvQname = '_slurmctld._tcp.vec.test';
const sizes = [
  ['A answer', a, 'n001.vec.test'],
  ['two SRV answers', srv, srvQname],
] as const;
for (const [label, records, qname] of sizes) {
  const ours = encodeSections(qname, records).bytes.length;
  const theirs = packet.encode({ answers: [...records] }).length - 12;
  process.stdout.write(`${label}: ${ours} record bytes with owner pointers, ${theirs} as dns-packet writes them\n`);
}
