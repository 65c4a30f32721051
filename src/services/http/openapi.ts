/**
 * The OpenAPI 3.0 document's frame: title, security schemes, and what each
 * route's access rule means in it (security, 401/403). Everything else in the
 * document, every path with its parameters, bodies and replies, comes from the
 * route schemas (@fastify/swagger over api-schemas.ts). Served at
 * /api/v1/openapi.json, and as a page at /api/docs.
 */
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import type { FastifySchema, RouteOptions } from 'fastify';
import { AUTH_ERRORS, BODY_ERRORS, err } from './api-schemas.ts';
import type { Access } from './auth.ts';
import { swaggerTransform, type Components } from './schema.ts';

/** Where the interactive API page is (swagger-ui, its files from node_modules: no network needed). */
export const DOCS_PREFIX = '/api/docs';

const SECURITY: Record<Access, Array<Record<string, string[]>>> = {
  open: [],
  // From a cluster network, or with the token.
  cluster: [{}, { bearer: [] }],
  // The token, the UI's cookie, or nothing when http.readOpenTo opens reads.
  read: [{ bearer: [] }, { cookie: [] }, {}],
  write: [{ bearer: [] }],
};

const ACCESS_ERRORS: Record<Access, object> = {
  open: {},
  cluster: { 403: err('not from a cluster network (and no token)') },
  read: AUTH_ERRORS,
  write: AUTH_ERRORS,
};

/** A route's schema with what its access rule and its body add: security, 401/403, 400/413/415. */
function documentRoute({ schema: given, url, route, openapiObject }: { schema: FastifySchema | undefined; url: string; route: RouteOptions; openapiObject: { components?: { schemas?: Components } } }): { schema: FastifySchema; url: string } {
  const schema = given ?? {};
  const access: Access = route.config?.access ?? 'open';
  const kind = route.config?.kind;
  const response = { ...(schema.body ? BODY_ERRORS : {}), ...ACCESS_ERRORS[access], ...(schema.response as object | undefined) };
  // A wildcard's rest of the path is `*` to fastify and {path} in the document.
  const documented = url.endsWith('/*') ? url.slice(0, -1) + '{path}' : url;
  let params = schema.params;
  if (documented !== url && params && typeof params === 'object' && 'shape' in params) params = undefined;
  const withPath = documented !== url
    ? { params: { type: 'object', required: ['path'], properties: { path: { type: 'string', description: 'path below the root; may contain slashes' } } } }
    : { params };
  openapiObject.components ??= {};
  const components = (openapiObject.components.schemas ??= {});
  return swaggerTransform({ schema: { ...schema, ...withPath, security: SECURITY[access], response, ...(kind ? { tags: [kind] } : {}) } as FastifySchema, url: documented, components });
}

export const SWAGGER_OPTIONS: FastifyDynamicSwaggerOptions = {
  openapi: {
    openapi: '3.0.3',
    info: {
      title: 'bootherd',
      version: '1',
      description: 'REST API of the bootherd head node: nodes, profiles, host mappings, SRV records, leases, boot timelines, NTP and status; plus the boot endpoints iPXE and UEFI HTTP boot use. Changes need the bearer token from `<state>/api-token`; reads need it unless `http.readOpenTo` opens them. The page at /api/docs reads this document with the UI\'s login cookie: log in at / first.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'the token in <state>/api-token' },
        cookie: { type: 'apiKey', in: 'cookie', name: 'bootherd_token', description: 'the same token, as the UI keeps it (reads only)' },
      },
    },
    // The routes' kinds (the `kind` label of bootherd_http_requests_total).
    tags: [
      { name: 'api', description: 'the REST API' }, { name: 'events', description: 'live updates' },
      { name: 'boot', description: 'iPXE scripts and the booted call-back' }, { name: 'files', description: 'boot files' },
      { name: 'loaders', description: 'iPXE loaders for UEFI HTTP boot' }, { name: 'telemetry', description: 'InfluxDB-compatible ingest' },
      { name: 'ui', description: 'the browser UI' }, { name: 'metrics', description: 'Prometheus metrics' },
    ],
  },
  transform: documentRoute as FastifyDynamicSwaggerOptions['transform'],
};
