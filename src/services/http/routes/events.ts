/**
 * Live updates for the UI: server-sent events on /api/v1/events. Store
 * changes (nodes, leases, boot stages) mark nodes dirty; every quarter second
 * the dirty nodes go out as `node` events (their full view) or `node-removed`.
 * Coalescing keeps a DHCP storm (hundreds of leases a second) from becoming
 * hundreds of events per browser.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { StoreChange } from '../../../store/store.ts';
import { ipToInt } from '../../../net/ipv4.ts';
import { textReply } from '../api-schemas.ts';
import type { HttpServiceDeps } from '../context.ts';
import { nodeView } from '../views.ts';

const FLUSH_MS = 250;
const KEEPALIVE_MS = 25_000;

export class EventHub {
  private readonly clients = new Set<ServerResponse>();
  private dirty = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly deps: HttpServiceDeps) {}

  get clientCount(): number { return this.clients.size; }

  add(res: ServerResponse): void {
    if (!this.clients.size) {
      this.unsubscribe = this.deps.store.onChange((c) => this.onChange(c));
      this.keepalive = setInterval(() => this.broadcast(': keepalive\n\n'), KEEPALIVE_MS);
      this.keepalive.unref();
    }
    this.clients.add(res);
    res.once('close', () => this.remove(res));
  }

  private remove(res: ServerResponse): void {
    if (!this.clients.delete(res) || this.clients.size) return;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearInterval(this.keepalive);
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.dirty.clear();
  }

  private onChange(c: StoreChange): void {
    let name: string | undefined;
    switch (c.collection) {
      case 'nodes':
      case 'boots':
        name = c.key;
        break;
      case 'leases':
        name = this.deps.model.nodeByIp(ipToInt(c.key))?.name;
        break;
      default:
        return;
    }
    if (!name) return;
    this.dirty.add(name);
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    this.flushTimer = undefined;
    const names = this.dirty;
    this.dirty = new Set();
    let out = '';
    for (const name of names) {
      const n = this.deps.model.nodeByName(name);
      out += n
        ? `event: node\ndata: ${JSON.stringify(nodeView(this.deps.store, n))}\n\n`
        : `event: node-removed\ndata: ${JSON.stringify({ name })}\n\n`;
    }
    if (out) this.broadcast(out);
  }

  private broadcast(text: string): void {
    for (const res of this.clients) res.write(text);
  }

  /** Ends every stream (server stop). */
  close(): void {
    const all = [...this.clients];
    for (const res of all) res.end();
    for (const res of all) this.remove(res);
  }
}

export function eventRoutes(app: FastifyInstance, hub: EventHub): void {
  app.get('/api/v1/events', {
    config: { access: 'read', kind: 'events' },
    schema: { summary: 'live updates (server-sent events): `node` with a Node, `node-removed` with {name}', response: { 200: textReply('event stream', 'text/event-stream') } },
  }, (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'connection': 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    hub.add(res);
  });
}
