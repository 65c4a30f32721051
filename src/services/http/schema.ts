/**
 * Route schemas are zod schemas, written once (src/services/http/api-schemas.ts,
 * reusing the cluster file's own node, host and SRV schemas): fastify validates
 * requests with them, and @fastify/swagger turns them into the OpenAPI document
 * with z.toJSONSchema. Why zod validates rather than ajv over the converted
 * schema: docs/http.md#schemas.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance, FastifySchema, FastifySchemaCompiler, FastifyTypeProvider, RawServerDefault } from 'fastify';
import { z } from 'zod';
import { zodProblem } from '../../cluster/model.ts';
import { HttpError } from './errors.ts';

/**
 * Request types from the zod schemas: a validated body is typed as the schema's
 * input (the model parses it into records). Replies are not typed by their
 * schemas (the records are readonly, zod's types are not); the tests check
 * every reply against its schema instead.
 */
export interface ZodTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
  serializer: unknown;
}

/** The fastify instance the routes are declared on. */
export type HttpApp = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, ZodTypeProvider>;

function isZod(s: unknown): s is z.ZodType {
  return s instanceof z.ZodType;
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks a request part against its zod schema. The value passed on is the
 * request's own (the model parses and normalises it); a failure becomes the
 * same 400 that names the field as the model's own check gives, counted as
 * bad-body.
 */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => (data: unknown) => {
  const r = schema.safeParse(data);
  if (r.success) return { value: data };
  const p = zodProblem(r.error);
  if (httpPart === 'body' && !p.field && !isObject(data)) {
    return { error: new HttpError(400, '', 'expected a JSON object as the request body', 'bad-body') };
  }
  return { error: new HttpError(400, p.field, p.message, 'bad-body') };
};

/**
 * Replies are serialised as they were before they had schemas (JSON.stringify):
 * a response schema documents the reply, the tests check replies against it,
 * and nothing is dropped from a reply a schema forgot.
 */
export const serializerCompiler = () => (data: unknown) => JSON.stringify(data);

const JSON_SCHEMA = { target: 'openapi-3.0', unrepresentable: 'any' } as const;

interface PipeDef { type: string; in?: { _zod: { def: PipeDef } }; out?: { _zod: { def: PipeDef } } }

/**
 * Our transforms of strings normalise them (lowercase names, canonical MACs):
 * what comes out is still a string, which zod cannot know of a transform.
 */
function normalisedString(ctx: { zodSchema: { _zod: { def: unknown } }; jsonSchema: { type?: unknown } }): void {
  const def = ctx.zodSchema._zod.def as PipeDef;
  if (def.type === 'pipe' && def.in?._zod.def.type === 'string' && def.out?._zod.def.type === 'transform' && ctx.jsonSchema.type === undefined) ctx.jsonSchema.type = 'string';
}

/** Named schemas (`.meta({ id })`) of the document: components.schemas, referred to from the routes. */
export type Components = Record<string, unknown>;

const DEFS = '#/definitions/';

/** `#/definitions/X` (what zod writes) as `#/components/schemas/X` (where OpenAPI keeps them). */
function toComponentRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toComponentRefs);
  if (!v || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) =>
    [k, k === '$ref' && typeof x === 'string' && x.startsWith(DEFS) ? `#/components/schemas/${x.slice(DEFS.length)}` : toComponentRefs(x)]));
}

/**
 * A zod schema as an OpenAPI 3.0 schema object; requests as they are sent,
 * replies as they are given. Named schemas go to `components` (one name, one
 * shape: a second shape under a name already taken is an error).
 */
export function jsonSchemaOf(s: z.ZodType, io: 'input' | 'output', components: Components = {}): Record<string, unknown> {
  const { $schema: _, definitions, ...json } = z.toJSONSchema(s, { ...JSON_SCHEMA, io, ...(io === 'output' ? { override: normalisedString } : {}) }) as Record<string, unknown>;
  for (const [name, def] of Object.entries((definitions ?? {}) as Record<string, unknown>)) {
    const converted = toComponentRefs(def);
    if (name in components && JSON.stringify(components[name]) !== JSON.stringify(converted)) throw new Error(`two shapes of the schema named ${name} (${io})`);
    components[name] = converted;
  }
  return toComponentRefs(json) as Record<string, unknown>;
}

type Converted = Record<string, unknown>;

/**
 * A reply that is only a reference to a named schema takes that schema's
 * description, which @fastify/swagger shows as the reply's (it drops the
 * siblings of a bare `$ref`, so the reference goes into an allOf, as zod
 * writes a described reference).
 */
function described(json: Record<string, unknown>, components: Components): Record<string, unknown> {
  if (json['description'] || typeof json['$ref'] !== 'string') return json;
  const named = components[json['$ref'].split('/').pop()!] as { description?: string } | undefined;
  return { description: named?.description ?? 'the reply', allOf: [json] };
}

function convertResponses(response: unknown, components: Components): unknown {
  if (!response || typeof response !== 'object') return response;
  const out: Record<string, unknown> = {};
  for (const [code, r] of Object.entries(response)) {
    if (isZod(r)) out[code] = described(jsonSchemaOf(r, 'output', components), components);
    else if (r && typeof r === 'object' && 'content' in r) {
      // { description, content: { 'text/plain': { schema } } }: non-JSON replies.
      const { content, ...rest } = r as { content: Record<string, { schema: unknown }> };
      out[code] = { ...rest, content: Object.fromEntries(Object.entries(content).map(([type, c]) => [type, { ...c, schema: isZod(c.schema) ? jsonSchemaOf(c.schema, 'output', components) : c.schema }])) };
    } else out[code] = r;
  }
  return out;
}

/** @fastify/swagger's `transform`: the zod parts of a route schema as JSON Schema, named ones into `components`. */
export function swaggerTransform({ schema, url, components }: { schema: FastifySchema; url: string; components: Components }): { schema: FastifySchema; url: string } {
  if (!schema) return { schema, url };
  const out: Converted = { ...(schema as Converted) };
  for (const part of ['body', 'querystring', 'params', 'headers'] as const) {
    const s = out[part];
    if (isZod(s)) out[part] = jsonSchemaOf(s, 'input', components);
  }
  if (out['response']) out['response'] = convertResponses(out['response'], components);
  return { schema: out as FastifySchema, url };
}
