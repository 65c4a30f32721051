/**
 * Boot over HTTP, second half: kernels, initrds and images under /files/
 * (from the cluster file's `files:` directory) and iPXE loaders under
 * /loaders/ (from boot-assets/ipxe, for UEFI HTTP boot). GET and HEAD, single
 * byte ranges, exact lengths, strong validators. A download that delivers a
 * file's last byte to a known node is a boot-timeline stage: loader, kernel
 * or initrd.
 */
import { open, realpath, type FileHandle } from 'node:fs/promises';
import type { OutgoingHttpHeaders } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { BootProfile, BootStage } from '../../../cluster/types.ts';
import { ipToInt } from '../../../net/ipv4.ts';
import { clientIpv4 } from '../auth.ts';
import { filePath, fileReplies } from '../api-schemas.ts';
import type { HttpServiceDeps } from '../context.ts';
import { HttpError } from '../errors.ts';
import type { SendfilePump } from '../../../net/sendfile-pump.ts';
import { plainSocketFd } from '../../../net/sendfile-pump.ts';
import { etagOf, FilePathError, fileStream, parseRange, resolveUnder, type ByteRange } from '../files.ts';

export const LOADERS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../boot-assets/ipxe');

/** Whose boot a download is part of: the node's at the client's address, else the pool client's whose lease it is. */
type BootOf = { readonly node: string } | { readonly mac: string };
/** Which boot stage a completed download is, and whose, if any. */
type StageOf = (req: FastifyRequest, rel: string) => { who: BootOf; stage: BootStage['stage']; detail: string } | undefined;

/** Logs a download that ended early, with the body bytes that went (the response never finishes, so no onResponse hook runs). */
export type TransferCut = (req: FastifyRequest, reply: FastifyReply, sent: number) => void;

export function fileRoutes(app: FastifyInstance, deps: HttpServiceDeps, pump: SendfilePump, transferCut: TransferCut, sentBytes: { files: { value: number }; loaders: { value: number } }, drop: (reason: string) => void): void {
  const { model, store, timelines } = deps;
  /** The node at the client's address and its profile, else the pool client leasing it and the default profile. */
  const bootAt = (req: FastifyRequest): { who: BootOf; profile: BootProfile } | undefined => {
    const ip = clientIpv4(req.socket.remoteAddress);
    if (!ip) return undefined;
    const node = model.nodeByIp(ipToInt(ip));
    if (node) return { who: { node: node.name }, profile: model.profileOf(node) };
    const lease = store.get('leases', ip);
    const profile = model.profile('default');
    return lease && profile ? { who: { mac: lease.mac }, profile } : undefined;
  };

  const bootFileStage: StageOf = (req, rel) => {
    const at = bootAt(req);
    if (!at) return undefined;
    if (at.profile.kernel === rel) return { who: at.who, stage: 'kernel', detail: rel };
    if (at.profile.initrd.includes(rel)) return { who: at.who, stage: 'initrd', detail: rel };
    return undefined;
  };
  const loaderStage: StageOf = (req, rel) => {
    const at = bootAt(req);
    return at ? { who: at.who, stage: 'tftp-loader', detail: `${rel} over HTTP` } : undefined;
  };
  const record = (s: NonNullable<ReturnType<StageOf>>) => {
    if ('node' in s.who) timelines.record(s.who.node, s.stage, Date.now(), s.detail);
    else timelines.recordClient(s.who.mac, s.stage, Date.now(), s.detail);
  };

  const serve = (root: () => string, stageOf: StageOf, counter: { value: number }) =>
    async (req: FastifyRequest<{ Params: { '*': string } }>, reply: FastifyReply) => {
      const base = root();
      let file: string;
      try {
        file = resolveUnder(base, req.params['*']);
      } catch (e) {
        if (e instanceof FilePathError) throw new HttpError(400, 'path', e.message, e.reason);
        throw e;
      }
      const rel = path.relative(base, file).split(path.sep).join('/');
      const where = req.routeOptions.url === '/loaders/*' ? 'the loaders directory' : 'the boot file root';
      let fh: FileHandle;
      try {
        fh = await open(await confined(base, file, rel, where), 'r');
      } catch (e) {
        if (e instanceof HttpError) throw e;
        throw new HttpError(404, 'path', `no file ${rel} under ${where}`);
      }
      // The body comes from this open file, so what was stat'ed is what is sent even if the path is replaced meanwhile.
      let keepOpen = false;
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw new HttpError(404, 'path', `${rel} is not a file`);

        const etag = etagOf(st);
        reply.header('accept-ranges', 'bytes').header('etag', etag).header('last-modified', st.mtime.toUTCString())
          .type('application/octet-stream');
        if (req.headers['if-none-match'] === etag) return reply.code(304).send();

        // If-Range: the client's copy is stale, so it gets the whole new file, not a piece of it.
        const ifRange = req.headers['if-range'];
        const rangeHeader = ifRange && ifRange !== etag && ifRange !== st.mtime.toUTCString() ? undefined : req.headers.range;
        let asked = parseRange(rangeHeader, st.size);
        // Not a range: served whole, as RFC 9110 lets a server ignore Range, and counted.
        if (asked === 'malformed') { drop('bad-range'); asked = 'whole'; }
        if (asked === 'unsatisfiable') {
          return reply.code(416).header('content-range', `bytes */${st.size}`).send();
        }
        const range: ByteRange = asked === 'whole' ? { start: 0, end: st.size - 1 } : asked;
        const length = st.size === 0 ? 0 : range.end - range.start + 1;
        if (asked !== 'whole') reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${st.size}`);
        reply.header('content-length', length);
        if (req.method === 'HEAD') return reply.send();

        if (range.end === st.size - 1) {
          const stage = stageOf(req, rel);
          if (stage) {
            reply.raw.once('finish', () => record(stage));
          }
        }
        reply.raw.once('finish', () => { counter.value += length; });
        if (length === 0) return reply.send(Buffer.alloc(0));
        if (plainSocketFd(req.socket) === undefined) {
          // TLS: the bytes must pass through Node to be encrypted; the stream owns the file from here.
          keepOpen = true;
          return reply.send(fileStream(fh, range));
        }
        reply.hijack();
        await sendBody(req, reply, fh, range.start, length, counter);
        return reply;
      } finally {
        if (!keepOpen) await fh.close();
      }
    };

  /**
   * The real path of `file`, which must stay under the real `root`: a symbolic
   * link out of the root (to /etc/passwd, to the API token) is refused, as TFTP
   * refuses it. What is opened is the resolved path.
   */
  const confined = async (root: string, file: string, rel: string, where: string): Promise<string> => {
    const [realRoot, real] = await Promise.all([realpath(root), realpath(file)]);
    if (!real.startsWith(realRoot + path.sep)) throw new HttpError(403, 'path', `${rel} leads outside ${where} (a symbolic link); links must stay inside it`, 'symlink-escape');
    return real;
  };

  /** The head through Node, the body by sendfile; a transfer that fails midway closes the connection, as the only honest way to say so. */
  const sendBody = async (req: FastifyRequest, reply: FastifyReply, fh: FileHandle, offset: number, length: number, counter: { value: number }) => {
    const res = reply.raw;
    const socket = req.socket;
    res.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
    res.flushHeaders();
    // Node sees no traffic while the pump sends, so its idle timeout would cut a long download;
    // the pump's own stall timeout (the same length) watches the transfer instead.
    socket.setTimeout(0);
    const end = await pump.send(socket, fh.fd, offset, length);
    if (end.ok) {
      socket.setTimeout(app.server.timeout);
      res.end();
      return;
    }
    deps.log.debug({ url: req.url, client: req.socket.remoteAddress, sent: end.sent, of: length, why: end.reason }, 'boot file transfer ended early');
    req.failure = `${req.method} ${req.url}: the transfer ended after ${end.sent} of ${length} bytes: ${end.reason}`;
    counter.value += end.sent; // a whole transfer is counted on 'finish', which a cut one never reaches
    transferCut(req, reply, end.sent);
    res.destroy();
  };

  // HEAD is a route of its own, not fastify's automatic one: that one would set the length of the
  // (empty) body it discards instead of the file's.
  const methods = ['GET', 'HEAD'];
  app.route({
    method: methods, url: '/files/*', exposeHeadRoute: false, config: { access: 'open', kind: 'files' },
    schema: { summary: 'a boot file (kernel, initrd, image) from the files: directory; single Range requests, ETag', params: filePath, response: fileReplies('the file') },
    handler: serve(() => deps.config.filesDir, bootFileStage, sentBytes.files),
  });
  app.route({
    method: methods, url: '/loaders/*', exposeHeadRoute: false, config: { access: 'open', kind: 'loaders' },
    schema: { summary: 'an iPXE loader from boot-assets/ipxe (UEFI HTTP boot); like /files', params: filePath, response: fileReplies('the loader') },
    handler: serve(() => LOADERS_DIR, loaderStage, sentBytes.loaders),
  });
}
