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

/** A zod schema as an OpenAPI 3.0 schema object; requests as they are sent, replies as they are given. */
export function jsonSchemaOf(s: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _, ...json } = z.toJSONSchema(s, { ...JSON_SCHEMA, io, ...(io === 'output' ? { override: normalisedString } : {}) }) as Record<string, unknown>;
  return json;
}

type Converted = Record<string, unknown>;

function convertResponses(response: unknown): unknown {
  if (!response || typeof response !== 'object') return response;
  const out: Record<string, unknown> = {};
  for (const [code, r] of Object.entries(response)) {
    if (isZod(r)) out[code] = jsonSchemaOf(r, 'output');
    else if (r && typeof r === 'object' && 'content' in r) {
      // { description, content: { 'text/plain': { schema } } }: non-JSON replies.
      const { content, ...rest } = r as { content: Record<string, { schema: unknown }> };
      out[code] = { ...rest, content: Object.fromEntries(Object.entries(content).map(([type, c]) => [type, { ...c, schema: isZod(c.schema) ? jsonSchemaOf(c.schema, 'output') : c.schema }])) };
    } else out[code] = r;
  }
  return out;
}

/** @fastify/swagger's `transform`: the zod parts of a route schema as JSON Schema. */
export function swaggerTransform({ schema, url }: { schema: FastifySchema; url: string }): { schema: FastifySchema; url: string } {
  if (!schema) return { schema, url };
  const out: Converted = { ...(schema as Converted) };
  for (const part of ['body', 'querystring', 'params', 'headers'] as const) {
    const s = out[part];
    if (isZod(s)) out[part] = jsonSchemaOf(s, 'input');
  }
  if (out['response']) out['response'] = convertResponses(out['response']);
  return { schema: out as FastifySchema, url };
}
