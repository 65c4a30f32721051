/**
 * The OpenAPI 3.0 document of the HTTP service, written by hand from the
 * routes (a test checks that every route is in it and every path in it is a
 * route, and that it is a valid OpenAPI document). Served at
 * /api/v1/openapi.json.
 */
import { BOOT_STAGES, LEASE_STATES } from '../../cluster/types.ts';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object, description: string) => ({ description, content: { 'application/json': { schema } } });
const text = (description: string, type = 'text/plain') => ({ description, content: { [type]: { schema: { type: 'string' } } } });
const err = (description: string) => json(ref('Error'), description);
const pathParam = (name: string, description: string, schema: object = { type: 'string' }) => ({ name, in: 'path', required: true, description, schema });
const AUTH_ERRORS = { 401: err('missing or wrong bearer token') };
const READ_SECURITY = [{ bearer: [] }, { cookie: [] }, {}];
const WRITE_SECURITY = [{ bearer: [] }];

const readOp = (summary: string, ok: object, extra: Record<number, object> = {}, parameters: object[] = []) => ({
  summary, security: READ_SECURITY, parameters, responses: { 200: ok, ...AUTH_ERRORS, ...extra },
});
const writeOp = (summary: string, okStatus: number, ok: object, extra: Record<number, object>, parameters: object[] = [], body?: object) => ({
  summary, security: WRITE_SECURITY, parameters,
  ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: body } } } } : {}),
  responses: { [okStatus]: ok, ...AUTH_ERRORS, ...extra },
});

const nodeName = pathParam('name', 'node name, like n001');
const invalid = { 400: err('validation failed; `field` names the field'), 413: err('body larger than http.bodyLimit'), 415: err('body is not application/json') };
const mac = { type: 'string', example: '52:54:00:12:34:56', description: 'any of aa:bb:cc:dd:ee:ff, aa-bb-..., aabbccddeeff' };

export const OPENAPI = {
  openapi: '3.0.3',
  info: {
    title: 'bootherd',
    version: '1',
    description: 'REST API of the bootherd head node: nodes, profiles, host mappings, SRV records, leases, boot timelines, NTP and status; plus the boot endpoints iPXE and UEFI HTTP boot use. Changes need the bearer token from <state>/api-token; reads need it unless http.readOpenTo opens them.',
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'the token in <state>/api-token' },
      cookie: { type: 'apiKey', in: 'cookie', name: 'bootherd_token', description: 'the same token, as the UI keeps it (reads only)' },
    },
    schemas: {
      Error: {
        type: 'object', required: ['statusCode', 'error', 'message'],
        properties: { statusCode: { type: 'integer' }, error: { type: 'string' }, message: { type: 'string' }, field: { type: 'string', description: 'the field at fault, like ip or macs[0]' } },
      },
      NodeInput: {
        type: 'object', required: ['name'], additionalProperties: false,
        properties: {
          name: { type: 'string', example: 'n001' },
          macs: { oneOf: [mac, { type: 'array', items: mac, minItems: 1 }] },
          mac: { ...mac, description: 'shorthand for a single MAC' },
          ip: { type: 'string', format: 'ipv4', description: 'its reserved address; left out for a node on a mode: proxy subnet' },
          profile: { type: 'string', default: 'default' },
        },
      },
      NodePatch: {
        type: 'object', additionalProperties: false,
        properties: { macs: { oneOf: [mac, { type: 'array', items: mac, minItems: 1 }] }, ip: { type: 'string', format: 'ipv4' }, profile: { type: 'string' } },
      },
      NodeRecord: {
        type: 'object', required: ['name', 'macs', 'profile', 'source'],
        properties: {
          name: { type: 'string' }, macs: { type: 'array', items: { type: 'string' } },
          ip: { type: 'string', nullable: true, description: 'the reservation, or on a mode: proxy subnet the address bootherd last saw the node use (null before)' },
          ipFrom: { type: 'string', nullable: true, enum: ['reservation', 'dhcp-request', 'pxe-request', 'ipxe-script', 'booted', null] },
          profile: { type: 'string' }, source: { type: 'string', enum: ['config', 'api'] },
        },
      },
      Node: {
        allOf: [ref('NodeRecord'), {
          type: 'object', required: ['lease', 'boot'],
          properties: {
            lease: { nullable: true, type: 'object', properties: { state: { type: 'string' }, mac: { type: 'string' }, expiresAt: { type: 'integer' }, updatedAt: { type: 'integer' } } },
            boot: { nullable: true, allOf: [ref('BootTimeline')] },
          },
        }],
      },
      BootTimeline: {
        type: 'object', required: ['node', 'startedAt', 'stages'],
        properties: {
          node: { type: 'string' }, startedAt: { type: 'integer', description: 'ms since the epoch' },
          stages: {
            type: 'array',
            items: {
              type: 'object', required: ['stage', 'at'],
              properties: { stage: { type: 'string', enum: [...BOOT_STAGES] }, at: { type: 'integer' }, detail: { type: 'string' } },
            },
          },
        },
      },
      Profile: {
        type: 'object', required: ['name', 'kernel', 'initrd', 'cmdline', 'loaders'],
        properties: { name: { type: 'string' }, kernel: { type: 'string' }, initrd: { type: 'array', items: { type: 'string' } }, cmdline: { type: 'string' }, loaders: { type: 'object', additionalProperties: { type: 'string' } } },
      },
      Host: {
        type: 'object', required: ['name', 'ip'],
        properties: { name: { type: 'string', example: 'storage1' }, ip: { type: 'string', format: 'ipv4' }, source: { type: 'string', enum: ['config', 'api'], readOnly: true } },
      },
      Srv: {
        type: 'object', required: ['name', 'target', 'port'],
        properties: {
          name: { type: 'string', example: '_slurmctld._tcp' }, target: { type: 'string', example: 'head.cluster.local' },
          port: { type: 'integer', minimum: 0, maximum: 65535 }, priority: { type: 'integer', default: 0 }, weight: { type: 'integer', default: 0 },
          source: { type: 'string', enum: ['config', 'api'], readOnly: true },
        },
      },
      Lease: {
        type: 'object', required: ['ip', 'mac', 'subnet', 'state', 'expiresAt', 'updatedAt'],
        properties: {
          ip: { type: 'string' }, mac: { type: 'string' }, clientId: { type: 'string' }, hostname: { type: 'string' }, node: { type: 'string' }, subnet: { type: 'string' },
          relay: { type: 'string', description: 'giaddr of the relay the lease was given through' }, interface: { type: 'string', description: 'head interface the lease was given on, when not relayed' },
          circuitId: { type: 'string', description: 'option 82 circuit id (hex)' }, remoteId: { type: 'string', description: 'option 82 remote id (hex)' },
          state: { type: 'string', enum: [...LEASE_STATES] }, expiresAt: { type: 'integer' }, updatedAt: { type: 'integer' },
        },
      },
      Status: {
        type: 'object',
        properties: {
          name: { type: 'string' }, domain: { type: 'string' }, head: { type: 'object', properties: { name: { type: 'string' }, address: { type: 'string' } } },
          config: { type: 'string' }, startedAt: { type: 'integer' }, uptimeSeconds: { type: 'integer' },
          counts: { type: 'object', additionalProperties: { type: 'integer' } },
          services: { type: 'object', additionalProperties: { type: 'object' } },
        },
      },
    },
  },
  paths: {
    '/api/v1/openapi.json': { get: readOp('this document', json({ type: 'object' }, 'OpenAPI 3.0 document')) },
    '/api/v1/nodes': {
      get: readOp('all nodes with their lease and last boot', json({ type: 'array', items: ref('Node') }, 'nodes, by name')),
      post: writeOp('add a node (live at once in DHCP, DNS, TFTP and HTTP)', 201, json(ref('Node'), 'the node added'), { ...invalid, 409: err('name, MAC or address taken') }, [], ref('NodeInput')),
    },
    '/api/v1/nodes/{name}': {
      get: readOp('one node', json(ref('Node'), 'the node'), { 404: err('no such node') }, [nodeName]),
      patch: writeOp('change a node\'s MACs, address or profile', 200, json(ref('Node'), 'the node as changed'), { ...invalid, 404: err('no such node'), 409: err('declared in the cluster file, or MAC/address taken') }, [nodeName], ref('NodePatch')),
      delete: writeOp('remove a node', 200, json({ type: 'object', properties: { removed: ref('NodeRecord') } }, 'the node removed'), { 404: err('no such node'), 409: err('declared in the cluster file') }, [nodeName]),
    },
    '/api/v1/nodes/{name}/boot': { get: readOp('the node\'s last boot, stage by stage', json(ref('BootTimeline'), 'boot timeline'), { 404: err('no such node, or no boot recorded') }, [nodeName]) },
    '/api/v1/profiles': { get: readOp('boot profiles (from the cluster file)', json({ type: 'array', items: ref('Profile') }, 'profiles')) },
    '/api/v1/profiles/{name}': { get: readOp('one boot profile', json(ref('Profile'), 'the profile'), { 404: err('no such profile') }, [pathParam('name', 'profile name')]) },
    '/api/v1/hosts': {
      get: readOp('host mappings (name to address, served by DNS)', json({ type: 'array', items: ref('Host') }, 'host mappings')),
      post: writeOp('add or replace a host mapping', 201, json(ref('Host'), 'the mapping'), { ...invalid, 409: err('declared in the cluster file') }, [], ref('Host')),
    },
    '/api/v1/hosts/{name}': { delete: writeOp('remove a host mapping', 200, json({ type: 'object', properties: { removed: { type: 'string' } } }, 'removed'), { 404: err('no such mapping') }, [pathParam('name', 'host name')]) },
    '/api/v1/srv': {
      get: readOp('SRV records', json({ type: 'array', items: ref('Srv') }, 'SRV records')),
      post: writeOp('add an SRV record', 201, json(ref('Srv'), 'the record'), invalid, [], ref('Srv')),
    },
    '/api/v1/srv/{name}/{target}/{port}': {
      delete: writeOp('remove an SRV record', 200, json({ type: 'object', properties: { removed: { type: 'object' } } }, 'removed'), { 400: err('bad port'), 404: err('no such record') },
        [pathParam('name', 'owner name, like _slurmctld._tcp'), pathParam('target', 'target host'), pathParam('port', 'port', { type: 'integer' })]),
    },
    '/api/v1/leases': { get: readOp('DHCP leases, by address', json({ type: 'array', items: ref('Lease') }, 'leases')) },
    '/api/v1/leases/{ip}': { get: readOp('one lease', json(ref('Lease'), 'the lease'), { 400: err('not an address'), 404: err('no lease') }, [pathParam('ip', 'leased address')]) },
    '/api/v1/leases/{ip}/release': {
      post: writeOp('release a lease (the address returns to the pool)', 200, json(ref('Lease'), 'the released lease'), { 400: err('not an address'), 404: err('no lease'), 409: err('DHCP disabled') }, [pathParam('ip', 'leased address')]),
    },
    '/api/v1/ntp': { get: readOp('NTP service state: upstreams, election between heads', json({ type: 'object' }, 'the NTP service\'s status'), { 404: err('NTP not running') }) },
    '/api/v1/clock': { get: { summary: 'this head\'s clock (milliseconds since the epoch): the heads compare clocks with it', security: [], responses: { 200: json({ type: 'object', properties: { now: { type: 'integer' } }, required: ['now'] }, 'the clock') } } },
    '/api/v1/status': { get: readOp('server status: counts and each service\'s status', json(ref('Status'), 'status')) },
    '/api/v1/events': { get: readOp('live updates (server-sent events): `node` with a Node, `node-removed` with {name}', text('event stream', 'text/event-stream')) },
    '/boot/{file}': {
      get: {
        summary: 'a machine\'s iPXE script: /boot/<MAC with dashes>.ipxe; unknown MACs get http.unknownTemplate (also HEAD)', security: [],
        parameters: [pathParam('file', 'like 52-54-00-12-34-56.ipxe')], responses: { 200: text('iPXE script'), 400: err('not <mac>.ipxe'), 500: err('template error') },
      },
    },
    '/boot/{mac}/booted': {
      get: { summary: 'call-back from a node\'s init when it is up (only from the node\'s own address, or with the bearer token)', security: [{}, { bearer: [] }], parameters: [pathParam('mac', 'MAC, dashes or colons')], responses: { 200: text('ok'), 400: err('not a MAC'), 403: err('not from the node\'s own address'), 404: err('no node has this MAC') } },
      post: { summary: 'the same call-back as POST (any body, ignored)', security: [{}, { bearer: [] }], parameters: [pathParam('mac', 'MAC, dashes or colons')], responses: { 200: text('ok'), 400: err('not a MAC'), 403: err('not from the node\'s own address'), 404: err('no node has this MAC') } },
    },
    '/files/{path}': {
      get: {
        summary: 'a boot file (kernel, initrd, image) from the files: directory; single Range requests, HEAD, ETag', security: [],
        parameters: [pathParam('path', 'path below the boot file root; may contain slashes'), { name: 'Range', in: 'header', required: false, schema: { type: 'string', example: 'bytes=0-1023' } }],
        responses: { 200: text('the file', 'application/octet-stream'), 206: text('part of the file', 'application/octet-stream'), 304: { description: 'not modified (If-None-Match)' }, 400: err('bad or escaping path'), 404: err('no such file'), 416: { description: 'range starts past the end' } },
      },
    },
    '/loaders/{path}': {
      get: {
        summary: 'an iPXE loader from boot-assets/ipxe (UEFI HTTP boot); like /files', security: [],
        parameters: [pathParam('path', 'loader file, like ipxe.efi')],
        responses: { 200: text('the loader', 'application/octet-stream'), 206: text('part of it', 'application/octet-stream'), 400: err('bad or escaping path'), 404: err('no such loader'), 416: { description: 'range starts past the end' } },
      },
    },
    '/write': {
      post: {
        summary: 'InfluxDB 1.x write (telegraf outputs.influxdb): line protocol, gzip allowed; queued for every InfluxDB (docs/telemetry.md)', security: [],
        parameters: [
          { name: 'db', in: 'query', required: false, schema: { type: 'string' } }, { name: 'rp', in: 'query', required: false, schema: { type: 'string' } },
          { name: 'precision', in: 'query', required: false, schema: { type: 'string', enum: ['n', 'ns', 'u', 'us', 'ms', 's', 'm', 'h'] } },
          { name: 'p', in: 'query', required: false, description: 'the ingest token (or Authorization: Token)', schema: { type: 'string' } },
        ],
        requestBody: { required: true, content: { 'text/plain': { schema: { type: 'string' } } } },
        responses: { 204: { description: 'accepted and on disk' }, 400: err('bad line protocol (names the first bad line and its number), bad precision, not gzip'), 401: err('no or wrong token'), 413: err('over telemetry.bodyLimit') },
      },
    },
    '/api/v2/write': {
      post: {
        summary: 'InfluxDB 2 write (telegraf outputs.influxdb_v2), Authorization: Token <ingest token>; like /write', security: [],
        parameters: [
          { name: 'org', in: 'query', required: false, schema: { type: 'string' } }, { name: 'bucket', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'precision', in: 'query', required: false, schema: { type: 'string', enum: ['ns', 'us', 'ms', 's'] } },
        ],
        requestBody: { required: true, content: { 'text/plain': { schema: { type: 'string' } } } },
        responses: { 204: { description: 'accepted and on disk' }, 400: err('bad line protocol (names the first bad line and its number), bad precision, not gzip'), 401: err('no or wrong token'), 413: err('over telemetry.bodyLimit') },
      },
    },
    '/metrics': { get: readOp('counters and gauges, Prometheus text format', text('metrics')) },
    '/': { get: { summary: 'the browser UI', security: [], responses: { 200: text('the UI page', 'text/html') } } },
    '/ui/session': {
      post: {
        summary: 'the UI\'s login: checks the token and sets it as an HttpOnly, SameSite=Strict cookie (reads only)', security: [],
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['token'], properties: { token: { type: 'string' } } } } } },
        responses: { 204: { description: 'the cookie is set' }, 400: err('no token in the body'), 401: err('wrong token') },
      },
    },
    '/ui/{file}': { get: { summary: 'the UI\'s script and style sheet', security: [], parameters: [pathParam('file', 'app.js or style.css')], responses: { 200: text('the asset'), 404: err('no such asset') } } },
  },
} as const;
