/**
 * InfluxDB-compatible write endpoints for telegraf's outputs.influxdb (v1:
 * POST /write?db=&rp=&precision=, token as `p=`, `Authorization: Token`, or
 * Basic auth's password) and outputs.influxdb_v2 (POST /api/v2/write?org=
 * &bucket=&precision=, `Authorization: Token`). Steps: token, body (gzip
 * undone, bounded), line protocol checked, batch queued on disk; 204 once it
 * is. Errors answer as InfluxDB does: JSON with `error` (v1) or
 * `code`/`message` (v2).
 */
import { timingSafeEqual } from 'node:crypto';
import { gunzip } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { checkBatch, NS_PER, parsePrecision, stampUntimed, type Precision } from '../../../../protocols/influx/line-protocol.ts';
import type { Series } from '../../../metrics.ts';
import { RELAYED_HEADER, type TelemetryService } from '../../telemetry/service.ts';
import type { z } from 'zod';
import { influxV1Error, influxV1Query, influxV2Error, influxV2Query, lineProtocol, noBody } from '../api-schemas.ts';
import { clientIpv4 } from '../auth.ts';

type Api = 'v1' | 'v2';

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class WriteError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly reason: string) { super(message); }
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The token a write request presents, by the ways telegraf sends one. */
function presentedToken(req: FastifyRequest, api: Api): string | undefined {
  const header = req.headers.authorization;
  if (header) {
    const m = /^(Token|Bearer)\s+(\S+)\s*$/i.exec(header);
    if (m) return m[2];
    const basic = /^Basic\s+(\S+)\s*$/i.exec(header);
    if (basic && api === 'v1') {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
      return decoded.slice(decoded.indexOf(':') + 1);
    }
    return undefined;
  }
  if (api === 'v1') return (req.query as Record<string, string | undefined>).p;
  return undefined;
}

/**
 * Output chunk size for one body: the gzip trailer's length (a hint only,
 * bounded), so a telegraf batch comes out in one or two chunks instead of
 * zlib's default 16 KiB ones (each a callback on the main thread and a copy).
 */
function chunkSizeFor(body: Buffer, limit: number): number {
  const hint = body.length >= 18 ? body.readUInt32LE(body.length - 4) + 1 : 0;
  return Math.max(16 << 10, Math.min(hint, 1 << 20, limit + 1));
}

function gunzipBounded(body: Buffer, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => gunzip(body, { maxOutputLength: limit, chunkSize: chunkSizeFor(body, limit) }, (e, out) => {
    if (!e) return resolve(out);
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) reject(new WriteError(413, 'request too large', `the body is larger than ${limit} bytes once gunzipped (telemetry.bodyLimit)`, 'too-large'));
    else reject(new WriteError(400, 'invalid', `Content-Encoding says gzip but the body is not gzip: ${e.message}`, 'bad-gzip'));
  }));
}

export function telemetryRoutes(app: FastifyInstance, telemetry: TelemetryService, apiTokenMatches: (token: string) => boolean, limit: number, refused: (reason: string) => Series): void {
  const ingestMatches = (token: string): boolean => sameToken(token, telemetry.ingestToken);

  async function write(api: Api, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    try {
      const token = presentedToken(req, api);
      if (!token || !(ingestMatches(token) || apiTokenMatches(token))) {
        throw new WriteError(401, 'unauthorized', token ? 'authorization failed: wrong token; use <state>/ingest-token or <state>/api-token' : 'authorization failed: this needs a token (Authorization: Token <state>/ingest-token)', 'token');
      }
      if (!telemetry.running) throw new WriteError(503, 'unavailable', 'the telemetry relay is not running', 'not-running');
      const q = req.query as Record<string, string | undefined>;
      const precision = parsePrecision(q.precision, api);
      if (!precision) throw new WriteError(400, 'invalid', `precision: ${JSON.stringify(q.precision)} is not one of ${api === 'v1' ? 'n, ns, u, us, ms, s, m, h' : 'ns, us, ms, s'}`, 'bad-precision');
      if (api === 'v2' && !q.bucket) throw new WriteError(400, 'invalid', 'bucket: missing; telegraf\'s outputs.influxdb_v2 sends it (any name: every batch goes to telemetry.database)', 'bad-request');
      let body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const encoding = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
      if (encoding === 'gzip') body = await gunzipBounded(body, limit);
      else if (encoding !== '' && encoding !== 'identity') throw new WriteError(415, 'invalid', `Content-Encoding ${JSON.stringify(encoding)} is not supported; send gzip or none`, 'bad-encoding');
      let text: string;
      try { text = UTF8.decode(body); } catch { throw new WriteError(400, 'invalid', 'the body is not UTF-8', 'bad-line'); }
      const checked = checkBatch(text, precision);
      if (!checked.ok) throw new WriteError(400, 'invalid', `unable to parse line ${checked.line}: ${checked.message}: ${JSON.stringify(checked.text)}`, 'bad-line');
      if (checked.points === 0) return reply.code(204).send();
      const payload = checked.untimed.length ? Buffer.from(stampUntimed(text, checked.untimed, nowIn(precision))) : body;
      const relayed = typeof req.headers[RELAYED_HEADER] === 'string' && telemetry.isHeadAddress(clientIpv4(req.socket.remoteAddress));
      await telemetry.accept(payload, precision, checked.points, relayed);
      return reply.code(204).send();
    } catch (e) {
      if (!(e instanceof WriteError)) throw e;
      refused(e.reason).value++;
      req.failure = `${req.method} ${req.url}: ${e.message}`;
      reply.code(e.status).type('application/json; charset=utf-8');
      if (e.status === 401) reply.header('www-authenticate', 'Token realm="bootherd"');
      return reply.send(api === 'v1' ? { error: e.message } : { code: e.code, message: e.message });
    }
  }

  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) => done(null, body));
    scope.setErrorHandler((e: Error & { code?: string }, req, reply) => {
      const api: Api = req.url.startsWith('/api/v2/') ? 'v2' : 'v1';
      if (e.code !== 'FST_ERR_CTP_BODY_TOO_LARGE') throw e;
      refused('too-large').value++;
      const message = `the body is larger than ${limit} bytes (telemetry.bodyLimit)`;
      req.failure = `${req.method} ${req.url}: ${message}`;
      return reply.code(413).type('application/json; charset=utf-8').send(api === 'v1' ? { error: message } : { code: 'request too large', message });
    });
    const settings = (summary: string, querystring: z.ZodType, error: z.ZodType) => ({
      config: { access: 'open' as const, kind: 'telemetry' as const }, bodyLimit: limit,
      schema: {
        summary, querystring, body: lineProtocol, consumes: ['text/plain'],
        response: { 204: noBody('accepted and on disk'), 400: error.meta({ description: 'bad line protocol (names the first bad line), bad precision, not gzip' }), 401: error.meta({ description: 'no or wrong token' }), 413: error.meta({ description: 'over telemetry.bodyLimit' }), 415: error.meta({ description: 'a Content-Encoding other than gzip' }) },
      },
    });
    scope.post('/write', settings('InfluxDB 1.x write (telegraf outputs.influxdb); queued for every InfluxDB (docs/telemetry.md)', influxV1Query, influxV1Error), (req, reply) => write('v1', req, reply));
    scope.post('/api/v2/write', settings('InfluxDB 2 write (telegraf outputs.influxdb_v2), Authorization: Token <ingest token>', influxV2Query, influxV2Error), (req, reply) => write('v2', req, reply));
  });
}

/** Now, as an integer in a precision (the timestamp of points sent without one). */
function nowIn(p: Precision): string {
  return String((BigInt(Date.now()) * 1_000_000n) / NS_PER[p]);
}
