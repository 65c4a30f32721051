/**
 * Boot over HTTP, first half: the per-node iPXE script (exact URL
 * /boot/<mac with dashes>.ipxe, no redirects) and the "booted" call-back a
 * node's init makes when it is up (/boot/<mac>/booted, GET or POST, so a
 * busybox initrd can call it with plain `wget`), accepted from that node's
 * own address only.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { renderNodeScript, TemplateError } from '../../../boot/ipxe-script.ts';
import { isMac, normalizeMac } from '../../../net/mac.ts';
import { clientIpv4 } from '../auth.ts';
import { err, macParam, scriptFile, textReply } from '../api-schemas.ts';
import type { HttpServiceDeps } from '../context.ts';
import { HttpError } from '../errors.ts';

const SCRIPT = /^([0-9a-fA-F]{2}(?:-[0-9a-fA-F]{2}){5})\.ipxe$/;

export function bootRoutes(app: FastifyInstance, deps: HttpServiceDeps): void {
  const { model, timelines, httpBase, rootDisk } = deps;
  const telemetry = deps.telemetry && { url: httpBase, token: deps.telemetry.ingestToken };

  app.get<{ Params: { file: string } }>('/boot/:file', {
    config: { access: 'open', kind: 'boot' },
    schema: {
      summary: 'a machine\'s iPXE script (also HEAD); unknown MACs get http.unknownTemplate',
      params: scriptFile, response: { 200: textReply('iPXE script'), 400: err('not <mac>.ipxe'), 500: err('template error') },
    },
  }, async (req, reply) => {
    const m = SCRIPT.exec(req.params.file);
    if (!m) throw new HttpError(400, 'mac', 'expected /boot/<MAC with dashes>.ipxe, like /boot/52-54-00-12-34-56.ipxe', 'bad-path');
    const mac = normalizeMac(m[1]!);
    const client = clientIpv4(req.socket.remoteAddress);
    // A node on a proxy subnet whose address the boot exchange did not show is known by its script request.
    const unplaced = model.nodeByMac(mac);
    if (unplaced && unplaced.ip === undefined && client && req.method === 'GET') model.learnAddress(unplaced, client, 'ipxe-script', Date.now());
    let script: string;
    try {
      // The node's own address (its reservation) gets its iSCSI CHAP lines; any other gets the rest.
      script = renderNodeScript(model, mac, httpBase, rootDisk, client, telemetry);
    } catch (e) {
      if (e instanceof TemplateError) throw new HttpError(500, '', e.message);
      throw e;
    }
    const node = model.nodeByMac(mac);
    // Beside a site DHCP server the timeline says where the node was (the site's address for it).
    if (node && req.method === 'GET') timelines.record(node.name, 'ipxe-script', Date.now(), node.learned ? `${mac} at ${client}` : mac);
    else if (req.method === 'GET') timelines.recordClient(mac, 'ipxe-script', Date.now(), 'discovery');
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(script);
  });

  // The call-back lives in a context of its own: it takes any body (`wget --post-data=` sends a
  // form) and ignores it, while the API keeps refusing what is not JSON.
  void app.register(async (ctx) => {
    ctx.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 4096 }, (_req, _body, done) => done(null, undefined));
    const booted = async (req: FastifyRequest<{ Params: { mac: string } }>, reply: FastifyReply) => {
      if (!isMac(req.params.mac)) throw new HttpError(400, 'mac', 'expected a MAC address like 52-54-00-12-34-56', 'bad-path');
      const mac = normalizeMac(req.params.mac);
      const node = model.nodeByMac(mac);
      if (!node) throw new HttpError(404, 'mac', `no node has MAC ${mac}`);
      // Only the node itself reports that it booted (or an admin with the token): any other machine
      // on the cluster network could otherwise write every node's timeline.
      const client = clientIpv4(req.socket.remoteAddress);
      // A node on a proxy subnet not seen before: its call-back says where it is.
      if (node.ip === undefined && client) model.learnAddress(node, client, 'booted', Date.now());
      if (client !== model.nodeByMac(mac)?.ip && req.authUser !== 'api') {
        throw new HttpError(403, 'mac', `only ${node.name} itself (${node.ip ?? 'an address on a proxy subnet'}) may report that it booted`, 'booted-wrong-address');
      }
      timelines.record(node.name, 'booted', Date.now());
      return reply.type('text/plain; charset=utf-8').send(`ok ${node.name}\n`);
    };
    const settings = (summary: string) => ({
      config: { access: 'cluster' as const, kind: 'boot' as const },
      schema: { summary, params: macParam, response: { 200: textReply('ok <node>'), 400: err('not a MAC'), 403: err('not from the node\'s own address'), 404: err('no node has this MAC') } },
    });
    ctx.get('/boot/:mac/booted', settings('call-back from a node\'s init when it is up (only from the node\'s own address, or with the token)'), booted);
    ctx.post('/boot/:mac/booted', settings('the same call-back as POST (any body, ignored)'), booted);
  });
}
