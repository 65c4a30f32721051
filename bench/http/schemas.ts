/**
 * Route schemas: zod validating (what the server does) against ajv validating
 * the JSON Schema that z.toJSONSchema makes of the same zod schemas (what
 * @fastify/swagger with fastify's default validator would do). Two questions:
 * how many requests that break a schema each one refuses, and with the same
 * field-naming message as the model's; and what one validation costs. Then
 * what making the whole OpenAPI document costs at start.
 *
 * ajv and ajv-formats are fastify's own dependencies (what its validator
 * compiler uses), so they are here without being ours.
 *
 *   node --import tsx bench/http/schemas.ts
 */
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { z } from 'zod';
import { zodProblem } from '../../src/cluster/model.ts';
import { hostInput, nodeInput, srvInput } from '../../src/services/http/api-schemas.ts';
import { parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';
import { Server } from '../../src/server.ts';
import { MemoryStore } from '../../src/store/memory.ts';

// Requests that break a schema, from test/unit/http-openapi.test.ts and http-api.test.ts.
const BAD: Array<[z.ZodType, unknown]> = [
  [nodeInput, { name: 'n003', macs: ['zz'], ip: '198.18.0.13' }],
  [nodeInput, { name: 'n003', mac: 'zz', ip: '198.18.0.13' }],
  [nodeInput, { name: 'n003', macs: [], ip: '198.18.0.13' }],
  [nodeInput, { name: 'n003', macs: '52:54:00:00:00:03', ip: 13 }],
  [nodeInput, { name: 'n003', macs: '52:54:00:00:00:03', ip: '300.1.1.1' }],
  [nodeInput, { name: 'n003', macs: '52:54:00:00:00:03', ip: '198.18.0.13', profile: '' }],
  [nodeInput, { name: 'n003', macs: '52:54:00:00:00:03', ip: '198.18.0.13', colour: 'red' }],
  [nodeInput, { name: 'bad name!', macs: '52:54:00:00:00:03', ip: '198.18.0.13' }],
  [nodeInput, { macs: '52:54:00:00:00:03', ip: '198.18.0.13' }],
  [nodeInput, { name: 'n003', macs: '52:54:00:00:00:03', ip: '198.18.0.13', ip6: 'nope' }],
  [nodeInput, { name: 'n003', macs: '52:54:00:00:00:03', ip: '198.18.0.13', root: { bogus: 1 } }],
  [hostInput, { name: 'x y', ip: '198.18.0.9' }],
  [hostInput, { name: 'x', ip: '300.1.1.1' }],
  [srvInput, { name: '_x._tcp', target: 'head', port: 70000 }],
  [srvInput, { name: '_x._tcp', target: 'head', port: '80' }],
  [srvInput, { name: '_x._tcp', target: 'head', port: 80, weight: 1.5 }],
];
const GOOD = { name: 'n003', macs: ['52:54:00:00:00:03', '52:54:00:00:00:04'], ip: '198.18.0.13', profile: 'compute' };

// As fastify's own validator compiler sets it up: ajv with ajv-formats (ipv4, ipv6...).
const ajv = new Ajv({ allErrors: false, strict: false });
const addFormats = addFormatsModule as unknown as (a: Ajv) => void;
addFormats(ajv);
const compiled = new Map<z.ZodType, ReturnType<Ajv['compile']>>();
const ajvOf = (s: z.ZodType) => {
  let v = compiled.get(s);
  // Draft 7, the dialect of fastify's ajv (the OpenAPI 3.0 form writes exclusiveMinimum as draft 4 did).
  if (!v) { v = ajv.compile(z.toJSONSchema(s, { target: 'draft-07', io: 'input', unrepresentable: 'any' })); compiled.set(s, v); }
  return v;
};

let zodRefused = 0, ajvRefused = 0, ajvSameField = 0;
for (const [schema, body] of BAD) {
  const z1 = schema.safeParse(body);
  if (!z1.success) zodRefused++;
  const v = ajvOf(schema);
  if (!v(body)) {
    ajvRefused++;
    const e = v.errors![0]!;
    // ajv names a missing or unknown property in params, a bad one in instancePath (/macs/0).
    const field = e.instancePath.slice(1).replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.') || String(e.params['missingProperty'] ?? '');
    if (!z1.success && field === zodProblem(z1.error).field) ajvSameField++;
  }
}
console.log(`requests that break a schema: ${BAD.length}`);
console.log(`  zod refuses ${zodRefused}, each with the model's field-naming message`);
console.log(`  ajv over z.toJSONSchema refuses ${ajvRefused}; names the same field for ${ajvSameField}; its messages are ajv's ("must match pattern", "must NOT have additional properties")`);

function perSecond(f: () => unknown, ms = 1500): number {
  for (let i = 0; i < 2000; i++) f();
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(ms) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 1000; i++) f();
    n += 1000;
    now = process.hrtime.bigint();
  }
  return n / (Number(now - start) / 1e9);
}
const zodRate = perSecond(() => nodeInput.safeParse(GOOD));
const v = ajvOf(nodeInput);
const ajvRate = perSecond(() => v(GOOD));
console.log(`one valid POST /api/v1/nodes body: zod ${(1e6 / zodRate).toFixed(2)} µs, ajv ${(1e6 / ajvRate).toFixed(2)} µs`);

const yaml = `
cluster: { name: bench, domain: lab.test }
head: { name: head, address: 198.18.0.1 }
state: /tmp/bootherd-bench-schemas
subnets: [{ network: 198.18.0.0/24 }]
dns: { enabled: false }
ntp: { enabled: false }
tftp: { enabled: false }
telemetry: { enabled: true }
http: { address: 127.0.0.1, port: 0 }
`;
const server = new Server(parseConfig(yaml, '/tmp/bootherd-bench-schemas.yaml'), { log: silentLogger, store: new MemoryStore() });
await server.open();
await server.http!.app.ready();
let t0 = process.hrtime.bigint();
const doc = server.http!.app.swagger() as { paths: Record<string, object> };
const first = Number(process.hrtime.bigint() - t0) / 1e6;
t0 = process.hrtime.bigint();
server.http!.app.swagger();
const again = Number(process.hrtime.bigint() - t0) / 1e6;
console.log(`the OpenAPI document (${Object.keys(doc.paths).length} paths, ${JSON.stringify(doc).length} bytes): made in ${first.toFixed(1)} ms, then cached (${again.toFixed(3)} ms)`);
await server.stop();
process.exit(0);
