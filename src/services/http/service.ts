/**
 * The HTTP service: one fastify server for the REST API, the browser UI, the
 * per-node iPXE scripts and the boot file downloads. Around every route the
 * same few steps: check access (route config says what it needs), run the
 * route, turn errors into JSON that names the field, then count the request
 * and write the access log line.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifySchema } from 'fastify';
import { AccessPolicy, bearerOf, clientIpv4, cookieOf, ensureToken, TOKEN_COOKIE } from './auth.ts';
import type { HttpServiceDeps, RouteKind } from './context.ts';
import { HttpError, type ErrorBody } from './errors.ts';
import { HttpLogs } from './logs.ts';
import { DOCS_PREFIX, SWAGGER_OPTIONS } from './openapi.ts';
import { apiRoutes } from './routes/api.ts';
import { bootRoutes } from './routes/boot.ts';
import { clusterRoutes } from './routes/cluster.ts';
import { ClusterViews, RequestRates } from './cluster-view.ts';
import { EventHub, eventRoutes } from './routes/events.ts';
import { fileRoutes } from './routes/files.ts';
import { telemetryRoutes } from './routes/telemetry.ts';
import { uiRoutes } from './routes/ui.ts';
import { textReply } from './api-schemas.ts';
import { serializerCompiler, validatorCompiler, type HttpApp } from './schema.ts';
import { configPath } from '../../config/load.ts';
import type { Logger } from '../../log.ts';
import { SendfilePump } from '../../net/sendfile-pump.ts';
import type { Service } from '../service.ts';
import { StoreUnavailableError } from '../../store/store.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** `api` when the request carried the token (the access log's user field). */
    authUser: string;
    /** Why the request failed, for the error log. */
    failure: string;
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict',
  413: 'Payload Too Large', 415: 'Unsupported Media Type', 416: 'Range Not Satisfiable', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

function errorBody(status: number, message: string, field?: string): ErrorBody {
  return { statusCode: status, error: STATUS_TEXT[status] ?? 'Error', message, ...(field ? { field } : {}) };
}

/** The directory for api_access_log and api_error_log. */
export function logDirOf(deps: Pick<HttpServiceDeps, 'config'>): string {
  const { config } = deps;
  if (!config.http.logDir) return path.join(config.stateDir, 'logs');
  return configPath(config, config.http.logDir);
}

function readConfigFile(config: HttpServiceDeps['config'], field: string, p: string): Buffer {
  try {
    return readFileSync(configPath(config, p));
  } catch (e) {
    throw new Error(`${field}: cannot read ${configPath(config, p)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/**
 * On every response. The UI is one page with its script and style sheet from
 * this server, no inline code, and talks only to this server; nothing may frame it
 * (clickjacking), and no type is guessed from content (a boot file served as HTML).
 */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
} as const;

/**
 * The API page (swagger-ui) draws its icons as data: images and sets one inline
 * style; its scripts still come only from this server.
 */
const DOCS_CSP = SECURITY_HEADERS['content-security-policy']
  .replace("img-src 'self'", "img-src 'self' data:").replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");

/** Descriptors kept for everything but HTTP connections: DNS over TCP (512), TFTP transfers, files, the store. */
const FD_RESERVE = 2048;

/** The soft RLIMIT_NOFILE of this process, from /proc (Linux); undefined elsewhere or when unlimited. */
function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s+/)[3]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}

/** A client that takes nothing for this long is gone (a node that reset mid-download). */
const CONNECTION_TIMEOUT_MS = 120_000;

export class HttpService implements Service {
  readonly app: FastifyInstance;
  /** Every route, as registered, with its schema; `hidden`: left out of the OpenAPI document (the API page's own files). */
  readonly routes: Array<{ method: string; url: string; hidden: boolean; schema: FastifySchema | undefined }> = [];
  private readonly log: Logger;
  private readonly pump: SendfilePump;
  private readonly events: EventHub;
  private readonly rates: RequestRates;
  private policy: AccessPolicy | undefined;
  private logs: HttpLogs | undefined;
  private readonly startedAt = Date.now();
  private readonly requests = new Map<string, { value: number }>();
  private readonly requestFamily;
  private readonly dropped;
  /** Open connections by client address. */
  private readonly openByClient = new Map<string, number>();

  constructor(private readonly deps: HttpServiceDeps) {
    const { config, metrics } = deps;
    this.log = deps.log.child({ svc: 'http' });
    // One sending thread: a second costs CPU and gains no throughput (docs/http.md#benchmark).
    this.pump = new SendfilePump(CONNECTION_TIMEOUT_MS);
    this.events = new EventHub(deps);
    this.rates = new RequestRates(metrics);
    this.requestFamily = metrics.counter('bootherd_http_requests_total', 'HTTP requests answered, by kind of route and status code');
    this.dropped = metrics.counter('bootherd_http_dropped_total', 'HTTP requests refused as malformed, by reason');
    const sent = metrics.counter('bootherd_http_sent_bytes_total', 'Boot file bytes sent, by kind (files, loaders)');
    metrics.gaugeFn('bootherd_http_file_transfers', 'Boot file bodies being sent by sendfile', () => this.pump.activeTransfers);
    metrics.gaugeFn('bootherd_http_event_clients', 'Browsers following the live event stream', () => this.events.clientCount);

    const tls = config.http.tls;
    // Checked every second, so a slow client is cut near headersTimeout rather than up to 30 s (node's default) later.
    const limits = { headersTimeout: config.http.headersTimeout * 1000, connectionsCheckingInterval: 1000 };
    const app = Fastify({
      logger: false,
      bodyLimit: config.http.bodyLimit,
      forceCloseConnections: true,
      // A client that reads nothing for two minutes is gone (a node that reset mid-download);
      // event streams send a keepalive every 25 s and stay open.
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      return503OnClosing: true,
      // A request (headers, then body) must arrive in time: a client that trickles its headers holds a descriptor.
      requestTimeout: config.http.requestTimeout * 1000,
      routerOptions: { maxParamLength: 1024 },
      ...(tls
        ? { https: { ...limits, cert: readConfigFile(config, 'http.tls.cert', tls.cert), key: readConfigFile(config, 'http.tls.key', tls.key) } }
        : { http: limits }),
      clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
        // Not HTTP at all, headers too large, or too slow: answer and close, as node would, but count it.
        const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
        this.drop(timedOut ? 'request-timeout' : 'bad-http');
        const status = timedOut ? '408 Request Timeout' : '400 Bad Request';
        if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        else socket.destroy(err);
      },
    }) as unknown as FastifyInstance;
    this.app = app;
    this.limitConnections();
    app.decorateRequest('authUser', '');
    app.decorateRequest('failure', '');
    app.addHook('onRoute', (r) => {
      for (const m of [r.method].flat()) if (m !== 'HEAD') this.routes.push({ method: m, url: r.url, hidden: Boolean(r.schema?.hide), schema: r.schema });
    });
    app.addHook('onRequest', async (req, reply) => { reply.headers(SECURITY_HEADERS); return this.checkAccess(req, reply); });
    app.addHook('onResponse', async (req, reply) => this.finished(req, reply));
    app.setErrorHandler((e: FastifyError, req, reply) => this.failed(e, req, reply));
    app.setNotFoundHandler((req, reply) => {
      req.failure = `no route ${req.method} ${req.url}`;
      return reply.code(404).send(errorBody(404, `no route ${req.method} ${req.url.split('?')[0]}; the API is described at /api/v1/openapi.json`));
    });
    // The route schemas (zod) validate the requests and make the OpenAPI document (schema.ts).
    app.setValidatorCompiler(validatorCompiler);
    app.setSerializerCompiler(serializerCompiler);
    // @fastify/swagger collects the routes declared after it, so they are declared in a plugin loaded after it.
    void app.register(fastifySwagger, SWAGGER_OPTIONS);
    void app.register(async (docs) => {
      // The page and its files are open, like the UI's; the document it shows is a read, like /api/v1/openapi.json.
      docs.addHook('onRoute', (r) => { r.config = { ...r.config, access: /\/(json|yaml)$/.test(r.url) ? 'read' : 'open', kind: 'ui' }; });
      await docs.register(fastifySwaggerUi, { routePrefix: DOCS_PREFIX, staticCSP: DOCS_CSP, uiConfig: { deepLinking: false }, validatorUrl: false });
    });
    void app.register(async (scope) => {
      const typed = scope.withTypeProvider() as unknown as HttpApp;
      bootRoutes(scope, deps);
      fileRoutes(scope, deps, this.pump, (req, reply, sent) => this.finished(req, reply, sent), { files: sent.with({ kind: 'files' }), loaders: sent.with({ kind: 'loaders' }) }, (reason) => this.drop(reason));
      apiRoutes(typed, deps, this.startedAt, () => app.swagger());
      eventRoutes(scope, this.events);
      clusterRoutes(typed, deps, new ClusterViews({ model: deps.model, store: deps.store, leases: deps.leases, telemetry: deps.telemetry && config.telemetry, rates: this.rates }));
      uiRoutes(typed, (token) => this.policy!.tokenMatches(token), Boolean(config.http.tls));
      if (deps.telemetry) {
        const refused = metrics.counter('bootherd_telemetry_refused_writes_total', 'Telemetry writes refused, by reason (token, bad-line, bad-gzip, too-large...)');
        telemetryRoutes(scope, deps.telemetry, (token) => this.policy!.tokenMatches(token), config.telemetry.bodyLimit, (reason) => refused.with({ reason }));
      }
      scope.get('/metrics', { config: { access: 'read', kind: 'metrics' }, schema: { summary: 'counters and gauges, Prometheus text format', response: { 200: textReply('metrics') } } }, async (_req, reply) =>
        reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.render()));
    });
  }

  async start(): Promise<void> {
    const { config, model } = this.deps;
    this.policy = new AccessPolicy(ensureToken(config.stateDir), model, config.http.readOpenTo);
    this.logs = new HttpLogs(logDirOf(this.deps));
    const fds = openFileLimit();
    if (fds !== undefined && config.http.maxConnections > fds - FD_RESERVE) {
      this.log.warn({ maxConnections: config.http.maxConnections, openFileLimit: fds }, `http.maxConnections leaves fewer than ${FD_RESERVE} of the ${fds} file descriptors (ulimit -n) to DNS over TCP, TFTP and the state directory; lower it or raise the limit`);
    }
    await this.app.listen({ host: config.http.address, port: config.http.port });
    this.rates.start();
    this.log.info({ address: config.http.address, port: this.address().port, base: this.deps.httpBase, logs: this.logs.dir }, 'HTTP listening');
  }

  /** The bound address (the real port when the config asked for port 0). */
  address(): AddressInfo {
    return this.app.server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    this.rates.stop();
    this.events.close();
    await this.app.close();
    this.pump.close();
    await this.logs?.close();
  }

  status(): Record<string, unknown> {
    const bound = this.app.server.listening ? this.address() : undefined;
    return {
      listening: bound ? `${bound.address}:${bound.port}` : null,
      baseUrl: this.deps.httpBase,
      readOpenTo: this.deps.config.http.readOpenTo,
      fileTransfers: this.pump.activeTransfers,
      eventClients: this.events.clientCount,
    };
  }

  /**
   * At most http.maxConnections open connections, and http.maxConnectionsPerClient
   * from one address: a client cannot take the descriptors DNS over TCP and TFTP need.
   * A connection over either limit is closed as soon as it is accepted, and counted.
   */
  private limitConnections(): void {
    const { maxConnections, maxConnectionsPerClient } = this.deps.config.http;
    const server = this.app.server;
    server.maxConnections = maxConnections;
    server.on('drop', () => this.drop('connection-limit'));
    server.on('connection', (socket: Socket) => {
      const client = socket.remoteAddress ?? '';
      const open = (this.openByClient.get(client) ?? 0) + 1;
      if (open > maxConnectionsPerClient) {
        this.drop('client-connection-limit');
        socket.destroy();
        return;
      }
      this.openByClient.set(client, open);
      socket.once('close', () => {
        const left = this.openByClient.get(client)! - 1;
        if (left > 0) this.openByClient.set(client, left); else this.openByClient.delete(client);
      });
    });
  }

  private drop(reason: string): void {
    this.dropped.with({ reason }).value++;
  }

  private async checkAccess(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const access = req.routeOptions.config.access ?? 'open';
    if (access === 'open') return;
    const bearer = bearerOf(req.headers.authorization);
    const cookie = cookieOf(req.headers.cookie, TOKEN_COOKIE);
    const policy = this.policy!;
    if (policy.tokenMatches(bearer) || (access === 'read' && policy.tokenMatches(cookie))) req.authUser = 'api';
    const denied = policy.check(access, clientIpv4(req.socket.remoteAddress), bearer, cookie);
    if (!denied) return;
    req.failure = `${req.method} ${req.url}: ${denied.message}`;
    await reply.code(denied.status).header('www-authenticate', 'Bearer realm="bootherd"').send(errorBody(denied.status, denied.message));
  }

  private failed(e: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
    let status: number;
    let message: string;
    let field: string | undefined;
    if (e instanceof HttpError) {
      ({ status, message } = e);
      field = e.field || undefined;
      if (e.dropReason) this.drop(e.dropReason);
    } else if (e instanceof StoreUnavailableError) {
      // The store's backend (etcd) is down: the write was not made; reads still answer from the cache.
      status = 503; message = e.message;
      this.log.warn({ url: req.url }, e.message);
    } else if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413; message = `the request body is larger than ${this.deps.config.http.bodyLimit} bytes (http.bodyLimit)`;
      this.drop('too-large');
    } else if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      status = 415; message = 'expected a JSON body (Content-Type: application/json)';
      this.drop('bad-content-type');
    } else if (e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
      status = 400; message = 'expected a JSON object as the request body, got an empty body';
      this.drop('bad-body');
    } else if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (e.statusCode === 400 && e instanceof SyntaxError)) {
      status = 400; message = `malformed JSON in the request body: ${e.message}`;
      this.drop('bad-json');
    } else if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      status = e.statusCode; message = e.message;
      this.drop('bad-request');
    } else {
      status = 500; message = 'internal error; the details are in api_error_log';
      this.log.error({ err: e, url: req.url }, 'HTTP request failed');
      req.failure = `${req.method} ${req.url}: ${e.stack ?? e.message}`;
    }
    req.failure ||= `${req.method} ${req.url}: ${message}`;
    return reply.code(status).type('application/json; charset=utf-8').send(errorBody(status, field && !message.startsWith(`${field}:`) ? `${field}: ${message}` : message, field));
  }

  /**
   * Counts and logs an answered request. `cutAfter`: a download that ended
   * early (client gone or stalled) after this many body bytes; it gets its
   * access line with the bytes that went, as Apache's %b, and an error-log
   * line, since a node that did not get its initrd is what an admin looks for.
   */
  private finished(req: FastifyRequest, reply: FastifyReply, cutAfter?: number): void {
    const kind: RouteKind | 'none' = req.routeOptions.config.kind ?? 'none';
    const status = reply.statusCode;
    const key = `${kind} ${status}`;
    let series = this.requests.get(key);
    if (!series) { series = this.requestFamily.with({ kind, code: String(status) }); this.requests.set(key, series); }
    series.value++;
    const logs = this.logs;
    if (!logs) return;
    const client = req.socket.remoteAddress ?? '-';
    const length = reply.getHeader('content-length');
    logs.accessed({
      client: clientIpv4(client) || client,
      user: req.authUser || undefined,
      time: new Date(),
      method: req.method,
      url: req.url,
      httpVersion: req.raw.httpVersion,
      status,
      bytes: cutAfter ?? (req.method === 'HEAD' || length === undefined ? undefined : Number(length)),
      referer: req.headers.referer,
      userAgent: req.headers['user-agent'],
    });
    if (status >= 400 || cutAfter !== undefined) logs.failed(status >= 500 ? 'error' : 'warn', `${clientIpv4(client) || client}:${req.socket.remotePort ?? 0}`, req.failure || `${req.method} ${req.url}: ${status}`);
  }
}
