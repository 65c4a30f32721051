/**
 * The REST API under /api/v1: nodes, profiles, host mappings, SRV records,
 * leases, boot timelines, the NTP election state and the server's status.
 * The route schemas (api-schemas.ts) check each request and make the OpenAPI
 * document. Every change goes through the cluster model, which validates it
 * again (errors name the field) and stores it; DHCP, DNS, TFTP and HTTP read
 * the same model, so a change is live everywhere when the call returns.
 */
import { z } from 'zod';
import { ModelError } from '../../../cluster/model.ts';
import { ipToInt, isIpv4 } from '../../../net/ipv4.ts';
import {
  bootView, err, hostInput, hostName, hostView, leaseIp, leaseListed, leaseView, macShorthand, nodeInput, nodeName, nodePatch, nodeView,
  profileName, profileView, removedNode, srvInput, srvKey, srvView, statusView,
} from '../api-schemas.ts';
import type { HttpServiceDeps } from '../context.ts';
import { HttpError } from '../errors.ts';
import type { HttpApp } from '../schema.ts';
import { nodeView as viewOf, nodeViews } from '../views.ts';

const READ = { access: 'read' as const, kind: 'api' as const };
const WRITE = { access: 'write' as const, kind: 'api' as const };

/** Runs a model change; its ModelError becomes the HTTP error that names the field. */
async function change<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ModelError) throw new HttpError(e.status, e.field, e.message);
    throw e;
  }
}

/** `document`: the OpenAPI document generated from the route schemas (@fastify/swagger). */
export function apiRoutes(app: HttpApp, deps: HttpServiceDeps, startedAt: number, document: () => unknown): void {
  const { model, store } = deps;
  const api = '/api/v1';

  app.get(`${api}/openapi.json`, { config: READ, schema: { summary: 'this document (generated from the route schemas)', response: { 200: z.looseObject({}).meta({ description: 'OpenAPI 3.0 document' }) } } }, async () => document());

  // ---- nodes ----
  app.get(`${api}/nodes`, { config: READ, schema: { summary: 'all nodes with their lease and last boot', response: { 200: z.array(nodeView).meta({ description: 'nodes, by name' }) } } },
    async () => nodeViews(model, store));
  app.get(`${api}/nodes/:name`, { config: READ, schema: { summary: 'one node', params: nodeName, response: { 200: nodeView, 404: err('no such node') } } }, async (req) => {
    const n = model.nodeByName(req.params.name);
    if (!n) throw new HttpError(404, 'name', `no node named ${req.params.name}`);
    return viewOf(store, n);
  });
  app.post(`${api}/nodes`, {
    config: WRITE,
    schema: { summary: 'add a node (live at once in DHCP, DNS, TFTP and HTTP)', body: nodeInput, response: { 201: nodeView.meta({ description: 'the node added' }), 409: err('name, MAC or address taken') } },
  }, async (req, reply) => {
    const record = await change(() => model.addNode(macShorthand(req.body)));
    return reply.code(201).send(viewOf(store, record));
  });
  app.patch(`${api}/nodes/:name`, {
    config: WRITE,
    schema: { summary: 'change a node\'s MACs, address or profile', params: nodeName, body: nodePatch, response: { 200: nodeView.meta({ description: 'the node as changed' }), 404: err('no such node'), 409: err('declared in the cluster file, or MAC/address taken') } },
  }, async (req) => {
    const record = await change(() => model.updateNode(req.params.name, req.body));
    return viewOf(store, record);
  });
  app.delete(`${api}/nodes/:name`, { config: WRITE, schema: { summary: 'remove a node', params: nodeName, response: { 200: removedNode, 404: err('no such node'), 409: err('declared in the cluster file') } } }, async (req) => {
    const record = await change(() => model.removeNode(req.params.name));
    return { removed: record };
  });

  // ---- profiles (from the cluster file, read-only) ----
  app.get(`${api}/profiles`, { config: READ, schema: { summary: 'boot profiles (from the cluster file)', response: { 200: z.array(profileView).meta({ description: 'the profiles' }) } } }, async () => Object.values(model.config.profiles));
  app.get(`${api}/profiles/:name`, { config: READ, schema: { summary: 'one boot profile', params: profileName, response: { 200: profileView, 404: err('no such profile') } } }, async (req) => {
    const p = model.profile(req.params.name);
    if (!p) throw new HttpError(404, 'name', `no profile named ${req.params.name}; known: ${Object.keys(model.config.profiles).join(', ')}`);
    return p;
  });

  // ---- host mappings and SRV records ----
  app.get(`${api}/hosts`, { config: READ, schema: { summary: 'host mappings (name to address, served by DNS)', response: { 200: z.array(hostView).meta({ description: 'the host mappings' }) } } }, async () => model.hosts());
  app.post(`${api}/hosts`, { config: WRITE, schema: { summary: 'add or replace a host mapping', body: hostInput, response: { 201: hostView, 409: err('declared in the cluster file') } } },
    async (req, reply) => reply.code(201).send(await change(() => model.addHost(req.body))));
  app.delete(`${api}/hosts/:name`, { config: WRITE, schema: { summary: 'remove a host mapping', params: hostName, response: { 200: z.object({ removed: z.string() }).meta({ description: 'the name removed' }), 404: err('no such mapping') } } }, async (req) => {
    await change(() => model.removeHost(req.params.name));
    return { removed: req.params.name };
  });
  app.get(`${api}/srv`, { config: READ, schema: { summary: 'SRV records', response: { 200: z.array(srvView).meta({ description: 'the SRV records' }) } } }, async () => model.srvRecords());
  app.post(`${api}/srv`, { config: WRITE, schema: { summary: 'add an SRV record', body: srvInput, response: { 201: srvView } } },
    async (req, reply) => reply.code(201).send(await change(() => model.addSrv(req.body))));
  app.delete(`${api}/srv/:name/:target/:port`, {
    config: WRITE,
    schema: { summary: 'remove an SRV record', params: srvKey, response: { 200: z.object({ removed: z.object({ name: z.string(), target: z.string(), port: z.number().int() }) }).meta({ description: 'the record removed' }), 400: err('bad port'), 404: err('no such record') } },
  }, async (req) => {
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
  const leaseErrors = { 400: err('not an address'), 404: err('no lease') };
  app.get(`${api}/leases`, { config: READ, schema: { summary: 'DHCP leases, by address, pool clients with their last boot stage', response: { 200: z.array(leaseListed).meta({ description: 'the leases, by address' }) } } },
    async () => [...store.values('leases')].sort((a, b) => ipToInt(a.ip) - ipToInt(b.ip))
      .map((l) => (l.node ? l : { ...l, boot: deps.timelines.clientStage(l.mac) ?? null })));
  app.get(`${api}/leases/:ip`, { config: READ, schema: { summary: 'one lease', params: leaseIp, response: { 200: leaseView, ...leaseErrors } } }, async (req) => leaseAt(req.params.ip));
  app.post(`${api}/leases/:ip/release`, {
    config: WRITE,
    schema: { summary: 'release a lease (the address returns to the pool)', params: leaseIp, response: { 200: leaseView.meta({ description: 'the released lease' }), ...leaseErrors, 409: err('DHCP disabled') } },
  }, async (req) => {
    const lease = leaseAt(req.params.ip);
    if (!deps.leases) throw new HttpError(409, '', 'DHCP is disabled in the cluster file; there is no lease table to release from');
    await deps.leases.release(ipToInt(lease.ip), Date.now());
    return store.get('leases', lease.ip);
  });

  // ---- boot timelines ----
  app.get(`${api}/nodes/:name/boot`, { config: READ, schema: { summary: 'the node\'s last boot, stage by stage', params: nodeName, response: { 200: bootView, 404: err('no such node, or no boot recorded') } } }, async (req) => {
    const n = model.nodeByName(req.params.name);
    if (!n) throw new HttpError(404, 'name', `no node named ${req.params.name}`);
    const t = store.get('boots', n.name);
    if (!t) throw new HttpError(404, 'name', `node ${n.name} has not booted since the state directory was created`);
    return t;
  });

  // ---- NTP and status ----
  app.get(`${api}/ntp`, { config: READ, schema: { summary: 'NTP service state: upstreams, election between heads', response: { 200: z.looseObject({}).meta({ description: 'the NTP service\'s status' }), 404: err('NTP not running') } } }, async () => {
    const ntp = deps.serviceStatus()['ntp'];
    if (!ntp) throw new HttpError(404, '', 'the NTP service is not running on this head (ntp.enabled is false, or this build has no NTP service)');
    return ntp;
  });
  // The heads compare their clocks with this (NTP-style: the probe's send and receive times around it); a clock is no secret.
  app.get(`${api}/clock`, {
    config: { access: 'open', kind: 'api' },
    schema: { summary: 'this head\'s clock: the heads compare clocks with it', response: { 200: z.object({ now: z.number().int().meta({ description: 'milliseconds since the epoch' }) }).meta({ description: 'the clock' }) } },
  }, async () => ({ now: Date.now() }));
  app.get(`${api}/status`, { config: READ, schema: { summary: 'server status: counts and each service\'s status', response: { 200: statusView } } }, async () => ({
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
