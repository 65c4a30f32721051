/**
 * The schemas of the HTTP routes: what each request may carry and what each
 * reply holds. Request bodies are the cluster file's own node, host and SRV
 * schemas (the model parses them again, so the API, the file and the store
 * agree by construction); replies reuse the store's record schemas. fastify
 * validates with these and the OpenAPI document is generated from them
 * (schema.ts).
 */
import { z } from 'zod';
import { ADDRESS_SOURCES, BOOT_STAGES, FIRMWARES } from '../../cluster/types.ts';
import { mac } from '../../config/fields.ts';
import { hostSchema, nodeSchema, srvSchema } from '../../config/schema.ts';
import { rootSection } from '../../config/sections/iscsi.ts';
import { bootTimelineSchema, hostRecordSchema, leaseSchema, nodeRecordSchema, srvRecordSchema } from '../../store/records.ts';

// ---- errors ----

export const errorSchema = z.object({
  statusCode: z.number().int(),
  error: z.string(),
  message: z.string(),
  field: z.string().optional().meta({ description: 'the request field at fault, like ip or macs[0]' }),
}).meta({ id: 'Error', description: 'an error; `field` names the request field at fault' });

/** An error reply, described. */
export const err = (description: string) => errorSchema.meta({ description });

export const AUTH_ERRORS = { 401: err('missing or wrong bearer token') };
/** What any route with a JSON body may answer besides its own errors. */
export const BODY_ERRORS = {
  400: err('the body breaks the schema; `field` names the field'),
  413: err('body larger than http.bodyLimit'),
  415: err('body is not application/json'),
};

// ---- path parameters (checked by the routes, which name the field) ----

const param = (description: string) => z.string().meta({ description });
export const nodeName = z.object({ name: param('node name, like n001') });
export const profileName = z.object({ name: param('profile name') });
export const hostName = z.object({ name: param('host name') });
export const srvKey = z.object({ name: param('owner name, like _slurmctld._tcp'), target: param('target host'), port: param('port number 0-65535') });
export const leaseIp = z.object({ ip: param('leased address, like 198.18.0.100') });
export const scriptFile = z.object({ file: param('<MAC with dashes>.ipxe, like 52-54-00-12-34-56.ipxe') });
export const macParam = z.object({ mac: param('MAC, dashes or colons') });
export const uiFile = z.object({ file: param('app.js, charts.js, chart.umd.min.js or style.css') });
/** A wildcard route's rest of the path, as fastify names it. */
export const filePath = z.object({ '*': param('path below the root; may contain slashes') });

// ---- request bodies ----

/** `mac` is shorthand for a one-element `macs` (POST /nodes only). */
export function macShorthand(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || !('mac' in body) || 'macs' in body) return body;
  const { mac: one, ...rest } = body as Record<string, unknown>;
  return { ...rest, macs: one };
}

export const nodeInput = z.preprocess(macShorthand, nodeSchema)
  .meta({ description: 'a node; `mac` may stand for a one-element `macs`' });
/** PATCH: any of a node's fields; the model checks the node they make (a rename is refused). */
export const nodePatch = nodeSchema.partial().meta({ description: 'the fields to change' });
export const hostInput = hostSchema;
export const srvInput = srvSchema;

export const SESSION_HINT = 'expected {"token": "<the token from <state>/api-token>"}';
/** Anything that is not an object is read as one without a token, so it gets the same hint. */
export const sessionInput = z.preprocess((v) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {}), z.object({
  token: z.string({ error: SESSION_HINT }).min(1, { error: SESSION_HINT }).meta({ description: 'the token from <state>/api-token' }),
}));

// ---- replies ----

export const leaseView = leaseSchema.meta({ id: 'Lease', description: 'a DHCP lease' });
/** In the lease list, a pool client's lease (no node) also says how far its boot got, as this head saw it. */
export const leaseListed = leaseSchema.extend({
  boot: z.object({ stage: z.enum(BOOT_STAGES), at: z.number(), detail: z.string().optional() }).nullable().optional()
    .meta({ description: 'a pool client\'s last boot stage served by this head (kept in its memory only); absent for a node\'s lease' }),
}).meta({ description: 'a DHCP lease, with a pool client\'s last boot stage' });
export const bootView = bootTimelineSchema.meta({ id: 'BootTimeline', description: 'a node\'s last boot, stage by stage' });

const nodeRecord = nodeRecordSchema.pick({ name: true, profile: true, source: true }).extend({
  macs: z.array(mac).meta({ description: 'canonical lowercase, colon-separated' }),
  ip: z.string().nullable().meta({ description: 'its reserved address, or on a mode: proxy subnet the address bootherd last saw it use (null before)' }),
  ipFrom: z.enum(['reservation', ...ADDRESS_SOURCES]).nullable().meta({ description: 'where ip came from: the reservation, or how it was learned on a proxy subnet' }),
});

export const nodeView = nodeRecord.extend({
  lease: leaseSchema.pick({ state: true, mac: true, expiresAt: true, updatedAt: true }).nullable()
    .meta({ description: 'the DHCP lease on the node\'s reserved address, if it has had one' }),
  boot: bootView.nullable().meta({ description: 'the node\'s last boot, stage by stage' }),
}).meta({ id: 'Node', description: 'a node, with its lease and last boot' });
export const removedNode = z.object({ removed: nodeRecordSchema }).meta({ description: 'the node removed' });

export const profileView = z.object({
  name: z.string(),
  kernel: z.string(),
  initrd: z.array(z.string()),
  cmdline: z.string(),
  loaders: z.partialRecord(z.enum(FIRMWARES as [string, ...string[]]), z.string()),
  root: rootSection.optional(),
}).meta({ id: 'Profile', description: 'a boot profile (from the cluster file)' });

export const hostView = hostRecordSchema.meta({ id: 'Host', description: 'a host mapping, served by DNS' });
export const srvView = srvRecordSchema.meta({ id: 'Srv', description: 'an SRV record' });

export const statusView = z.object({
  name: z.string(),
  domain: z.string(),
  head: z.object({ name: z.string(), address: z.string() }),
  config: z.string().meta({ description: 'the cluster file' }),
  startedAt: z.number().int(),
  uptimeSeconds: z.number().int(),
  counts: z.record(z.string(), z.number().int()),
  services: z.record(z.string(), z.looseObject({})).meta({ description: 'each service\'s own status, by name' }),
}).meta({ id: 'Status', description: 'the server\'s status' });

// ---- the UI's pictures ----

const count = z.number().int();
export const clusterView = z.object({
  now: count,
  boots: z.array(bootView).meta({ description: 'the most recent boots, latest start first' }),
  bootsTotal: count.meta({ description: 'nodes with a boot timeline in all' }),
  rates: z.object({
    intervalMs: count,
    points: z.array(z.object({ at: count, perSecond: z.record(z.string(), z.number()) })).meta({ description: 'requests per second of each protocol, sampled from the head\'s counters' }),
  }),
  pools: z.array(z.object({ subnet: z.string(), size: count, bound: count, declined: count, free: count, reserved: count })),
  usage: z.object({
    influxdb: z.string(), database: z.string(), error: z.string().nullable(),
    nodes: z.array(z.object({ host: z.string(), node: z.string().nullable(), cpu: z.number().nullable(), mem: z.number().nullable(), at: z.number() })),
  }).nullable().meta({ description: 'node CPU and memory (percent) from telegraf\'s points in the head\'s InfluxDB; null when telemetry is off' }),
}).meta({ id: 'ClusterView', description: 'what the UI\'s cluster page draws' });

export const servicesView = z.object({
  status: z.record(z.string(), z.looseObject({})).meta({ description: 'each service\'s own status, by name' }),
  counters: z.record(z.string(), z.array(z.object({
    name: z.string(), help: z.string(), type: z.enum(['counter', 'gauge']),
    series: z.array(z.object({ labels: z.record(z.string(), z.string()), value: z.number() })),
  }))).meta({ description: 'the metric families of each service (bootherd_<service>_...)' }),
}).meta({ id: 'ServicesView', description: 'each service\'s state and counters' });

// ---- boot files and telemetry ----

/** A file's bytes: the whole file, or the one range asked for. */
export const fileReplies = (what: string) => ({
  200: textReply(what, 'application/octet-stream'),
  206: textReply('the range asked for (Range: bytes=a-b)', 'application/octet-stream'),
  304: noBody('not modified (If-None-Match)'),
  400: err('bad or escaping path'),
  403: err('a symbolic link out of the root'),
  404: err('no such file'),
  416: noBody('the range starts past the end'),
});

const optional = (description: string) => z.string().optional().meta({ description });
/** The query of the InfluxDB write endpoints; the route checks precision and bucket, naming them as InfluxDB does. */
export const influxV1Query = z.object({
  db: optional('database (ignored: every batch goes to telemetry.database)'), rp: optional('retention policy (ignored)'),
  precision: optional('n, ns, u, us, ms, s, m or h (default ns)'), p: optional('the ingest token (or Authorization: Token)'),
});
export const influxV2Query = z.object({
  org: optional('ignored'), bucket: z.string().meta({ description: 'any name (every batch goes to telemetry.database)' }),
  precision: optional('ns, us, ms or s (default ns)'),
});
/** Line protocol, gzip allowed; the route parses it and names the first bad line. */
export const lineProtocol = z.unknown().meta({ type: 'string', description: 'InfluxDB line protocol, one point a line; Content-Encoding: gzip allowed' });
export const influxV1Error = z.object({ error: z.string() });
export const influxV2Error = z.object({ code: z.string(), message: z.string() });

/** A non-JSON reply, for the document: `{ description, content: { type: { schema } } }`. */
export function textReply(description: string, type = 'text/plain') {
  return { description, content: { [type]: { schema: z.string() } } };
}
/** A reply without a body (204), as @fastify/swagger writes one. */
export const noBody = (description: string) => ({ type: 'null', description });
