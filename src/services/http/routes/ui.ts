/**
 * The browser UI: one page, one script, one style sheet, no framework. The
 * files are read once at start and served from memory; the data comes from
 * the API and its event stream, with the same access rules as any client.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../errors.ts';

const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../ui');
const ASSETS: Record<string, string> = { 'app.js': 'text/javascript; charset=utf-8', 'style.css': 'text/css; charset=utf-8' };

export function uiRoutes(app: FastifyInstance): void {
  const page = readFileSync(path.join(UI_DIR, 'index.html'));
  const assets = new Map(Object.entries(ASSETS).map(([f, type]) => [f, { type, body: readFileSync(path.join(UI_DIR, f)) }]));
  const settings = { config: { access: 'open' as const, kind: 'ui' as const } };
  app.get('/', settings, async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page));
  app.get<{ Params: { file: string } }>('/ui/:file', settings, async (req, reply) => {
    const a = assets.get(req.params.file);
    if (!a) throw new HttpError(404, 'file', `no UI file ${req.params.file}`);
    return reply.type(a.type).header('cache-control', 'no-cache').send(a.body);
  });
}
