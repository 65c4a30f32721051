/**
 * The browser UI: one page, its two scripts and one style sheet, no framework
 * and no build step. The files are read once at start and served from
 * memory; the data comes from the API and its event stream, with the same
 * access rules as any client.
 * The token the login form takes becomes an HttpOnly cookie set here.
 * Chart.js (MIT) is served from its npm package, so the UI works offline.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { err, noBody, sessionInput, textReply, uiFile } from '../api-schemas.ts';
import { TOKEN_COOKIE } from '../auth.ts';
import { HttpError } from '../errors.ts';
import type { HttpApp } from '../schema.ts';

const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../ui');
const JS = 'text/javascript; charset=utf-8';
const ASSETS: Record<string, { type: string; file: string }> = {
  'app.js': { type: JS, file: path.join(UI_DIR, 'app.js') },
  'charts.js': { type: JS, file: path.join(UI_DIR, 'charts.js') },
  'style.css': { type: 'text/css; charset=utf-8', file: path.join(UI_DIR, 'style.css') },
  // The UMD build defines window.Chart; the package's exports name no subpath, so it is found next to its main file.
  'chart.umd.min.js': { type: JS, file: path.join(path.dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js') },
};

/**
 * `tokenMatches` checks a presented API token; `secure`: the server speaks
 * HTTPS, so the cookie may only travel over it.
 */
export function uiRoutes(app: HttpApp, tokenMatches: (token: string) => boolean, secure: boolean): void {
  const page = readFileSync(path.join(UI_DIR, 'index.html'));
  const assets = new Map(Object.entries(ASSETS).map(([f, { type, file }]) => [f, { type, body: readFileSync(file) }]));
  const config = { access: 'open' as const, kind: 'ui' as const };
  app.get('/', { config, schema: { summary: 'the browser UI', response: { 200: textReply('the UI page', 'text/html') } } }, async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page));
  app.get('/ui/:file', { config, schema: { summary: 'the UI\'s scripts (its own and Chart.js) and style sheet', params: uiFile, response: { 200: textReply('the file'), 404: err('no such file') } } }, async (req, reply) => {
    const a = assets.get(req.params.file);
    if (!a) throw new HttpError(404, 'file', `no UI file ${req.params.file}`);
    return reply.type(a.type).header('cache-control', 'no-cache').send(a.body);
  });
  // The login sets the cookie, not the page's script, so it can be HttpOnly: a script
  // injected into the page could not read the token.
  app.post('/ui/session', {
    config,
    schema: { summary: 'the UI\'s login: checks the token and sets it as an HttpOnly, SameSite=Strict cookie (reads only)', body: sessionInput, response: { 204: noBody('the cookie is set'), 401: err('wrong token') } },
  }, async (req, reply) => {
    // The schema has checked that the body holds a token.
    const { token } = req.body as { token: string };
    if (!tokenMatches(token)) throw new HttpError(401, 'token', 'wrong token; use the one in <state>/api-token');
    const cookie = `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
    return reply.code(204).header('set-cookie', cookie).header('cache-control', 'no-store').send();
  });
}
