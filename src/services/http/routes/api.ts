/**
 * The REST API under /api/v1: nodes, profiles, host mappings, SRV records,
 * leases, boot timelines, the NTP election state and the server's status.
 * Every change goes through the cluster model, which validates it (errors
 * name the field) and stores it; DHCP, DNS, TFTP and HTTP read the same model,
 * so a change is live everywhere when the call returns.
 */
import type { FastifyInstance } from 'fastify';
import { ModelError } from '../../../cluster/model.ts';
import { ipToInt, isIpv4 } from '../../../net/ipv4.ts';
import type { HttpServiceDeps } from '../context.ts';
import { HttpError } from '../errors.ts';
import { OPENAPI } from '../openapi.ts';
import { nodeView, nodeViews } from '../views.ts';

const READ = { config: { access: 'read' as const, kind: 'api' as const } };
const WRITE = { config: { access: 'write' as const, kind: 'api' as const } };

/** Request bodies must be JSON objects; the model then checks each field. */
function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, '', 'expected a JSON object as the request body', 'bad-body');
  }
  return body as Record<string, unknown>;
}

/** Runs a model change; its ModelError becomes the HTTP error that names the field. */
async function change<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ModelError) throw new HttpError(e.status, e.field, e.message);
    throw e;
  }
}

export function apiRoutes(app: FastifyInstance, deps: HttpServiceDeps, startedAt: number): void {
  const { model, store } = deps;
  const api = '/api/v1';

  app.get(`${api}/openapi.json`, READ, async () => OPENAPI);

  // ---- nodes ----
  app.get(`${api}/nodes`, READ, async () => nodeViews(model, store));
  app.get<{ Params: { name: string } }>(`${api}/nodes/:name`, READ, async (req) => {
    const n = model.nodeByName(req.params.name);
    if (!n) throw new HttpError(404, 'name', `no node named ${req.params.name}`);
    return nodeView(store, n);
  });
  app.post(`${api}/nodes`, WRITE, async (req, reply) => {
    const body = objectBody(req.body);
    // `mac` is accepted as shorthand for a one-element `macs`.
    const input = 'mac' in body && !('macs' in body) ? { ...body, macs: body.mac, mac: undefined } : body;
    const record = await change(() => model.addNode(stripUndefined(input)));
    return reply.code(201).send(nodeView(store, record));
  });
  app.patch<{ Params: { name: string } }>(`${api}/nodes/:name`, WRITE, async (req) => {
    const body = objectBody(req.body);
    const record = await change(() => model.updateNode(req.params.name, body));
    return nodeView(store, record);
  });
  app.delete<{ Params: { name: string } }>(`${api}/nodes/:name`, WRITE, async (req) => {
    const record = await change(() => model.removeNode(req.params.name));
    return { removed: record };
  });

  // ---- profiles (from the cluster file, read-only) ----
  app.get(`${api}/profiles`, READ, async () => Object.values(model.config.profiles));
  app.get<{ Params: { name: string } }>(`${api}/profiles/:name`, READ, async (req) => {
    const p = model.profile(req.params.name);
    if (!p) throw new HttpError(404, 'name', `no profile named ${req.params.name}; known: ${Object.keys(model.config.profiles).join(', ')}`);
    return p;
  });

  // ---- host mappings and SRV records ----
  app.get(`${api}/hosts`, READ, async () => model.hosts());
  app.post(`${api}/hosts`, WRITE, async (req, reply) => reply.code(201).send(await change(() => model.addHost(objectBody(req.body)))));
  app.delete<{ Params: { name: string } }>(`${api}/hosts/:name`, WRITE, async (req) => {
    await change(() => model.removeHost(req.params.name));
    return { removed: req.params.name };
  });
  app.get(`${api}/srv`, READ, async () => model.srvRecords());
  app.post(`${api}/srv`, WRITE, async (req, reply) => reply.code(201).send(await change(() => model.addSrv(objectBody(req.body)))));
  app.delete<{ Params: { name: string; target: string; port: string } }>(`${api}/srv/:name/:target/:port`, WRITE, async (req) => {
    const port = Number(req.params.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new HttpError(400, 'port', 'expected a port number 0-65535');
    await change(() => model.removeSrv(req.params.name, req.params.target, port));
    return { removed: { name: req.params.name, target: req.params.target, port } };
  });

  // ---- leases ----
  const leaseAt = (ip: string) => {
    if (!isIpv4(ip)) throw new HttpError(400, 'ip', 'expected an IPv4 address like 198.18.0.11');
    const lease = store.get('leases', ip);
    if (!lease) throw new HttpError(404, 'ip', `no lease for ${ip}`);
    return lease;
  };
  app.get(`${api}/leases`, READ, async () => [...store.values('leases')].sort((a, b) => ipToInt(a.ip) - ipToInt(b.ip)));
  app.get<{ Params: { ip: string } }>(`${api}/leases/:ip`, READ, async (req) => leaseAt(req.params.ip));
  app.post<{ Params: { ip: string } }>(`${api}/leases/:ip/release`, WRITE, async (req) => {
    const lease = leaseAt(req.params.ip);
    if (!deps.leases) throw new HttpError(409, '', 'DHCP is disabled in the cluster file; there is no lease table to release from');
    await deps.leases.release(ipToInt(lease.ip), Date.now());
    return store.get('leases', lease.ip);
  });

  // ---- boot timelines ----
  app.get<{ Params: { name: string } }>(`${api}/nodes/:name/boot`, READ, async (req) => {
    const n = model.nodeByName(req.params.name);
    if (!n) throw new HttpError(404, 'name', `no node named ${req.params.name}`);
    const t = store.get('boots', n.name);
    if (!t) throw new HttpError(404, 'name', `node ${n.name} has not booted since the state directory was created`);
    return t;
  });

  // ---- NTP and status ----
  app.get(`${api}/ntp`, READ, async () => {
    const ntp = deps.serviceStatus()['ntp'];
    if (!ntp) throw new HttpError(404, '', 'the NTP service is not running on this head (ntp.enabled is false, or this build has no NTP service)');
    return ntp;
  });
  // The heads compare their clocks with this (NTP-style: the probe's send and receive times around it); a clock is no secret.
  app.get(`${api}/clock`, { config: { access: 'open', kind: 'api' } }, async () => ({ now: Date.now() }));
  app.get(`${api}/status`, READ, async () => ({
    name: model.config.cluster.name,
    domain: model.domain,
    head: { name: model.config.head.name, address: model.config.head.address },
    config: model.config.source,
    startedAt,
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
    counts: { nodes: model.nodeCount(), hosts: model.hosts().length, srv: model.srvRecords().length, leases: store.size('leases'), boots: store.size('boots') },
    services: deps.serviceStatus(),
  }));
}

function stripUndefined(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}
