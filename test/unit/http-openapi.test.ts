/**
 * The OpenAPI document is generated from the route schemas: it is a valid
 * OpenAPI 3 document, every route is in it with its parameters, body and
 * replies, and the real replies fit their schemas. A request that breaks a
 * schema gets the same field-naming 400 as before the schemas validated
 * (the bodies below were taken from the server before the change). The
 * interactive page and its files are served from node_modules.
 */
import t from 'tap';
import { Validator } from '@seriousme/openapi-schema-validator';
import { z } from 'zod';
import { startHttpServer } from '../helpers/http-server.ts';

const CONFIG = `
profiles:
  compute: { kernel: vmlinuz, initrd: initrd.img, cmdline: console=ttyS0 }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11, profile: compute }
hosts:
  - { name: nas, ip: 198.18.0.250 }
srv:
  - { name: _slurmctld._tcp, target: head.lab.test, port: 6817 }
telemetry: { enabled: true }
`;

type Operation = { parameters?: Array<{ name: string; in: string }>; requestBody?: unknown; responses: Record<string, unknown>; security?: unknown[] };
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>> };

const bad = (message: string, field?: string) => ({ statusCode: 400, error: 'Bad Request', message, ...(field ? { field } : {}) });

t.test('OpenAPI document and schemas', async (t) => {
  const s = await startHttpServer(t, { extra: CONFIG });
  const res = await s.authed('/api/v1/openapi.json');
  t.equal(res.status, 200);
  const doc = (await res.json()) as Doc;

  t.test('a valid OpenAPI 3 document', async (t) => {
    const result = await new Validator().validate(doc as unknown as Parameters<Validator['validate']>[0]);
    t.ok(result.valid, `valid: ${JSON.stringify(result.errors ?? '').slice(0, 500)}`);
    t.equal(doc.openapi, '3.0.3');
  });

  t.test('every route is in it, with its schemas; nothing else is', async (t) => {
    const routes = s.server.http!.routes.filter((r) => !r.hidden);
    const documented = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).filter((m) => m !== 'head').map((m) => `${m.toUpperCase()} ${p}`)));
    const asDocumented = (url: string) => url.replace(/:(\w+)/g, '{$1}').replace(/\*$/, '{path}');
    t.same(routes.map((r) => `${r.method} ${asDocumented(r.url)}`).filter((r) => !documented.has(r)), [], 'every route is documented');
    t.equal(documented.size, new Set(routes.map((r) => `${r.method} ${r.url}`)).size, 'and nothing else');
    for (const r of routes) {
      const url = asDocumented(r.url);
      const op = doc.paths[url]![r.method.toLowerCase()]!;
      t.ok(r.schema?.summary, `${r.method} ${r.url} has a schema with a summary`);
      t.ok(Object.keys(op.responses).some((c) => c.startsWith('2')), `${r.method} ${url} documents its success reply`);
      for (const [code, reply] of Object.entries(op.responses)) {
        t.not((reply as { description: string }).description, 'Default Response', `${r.method} ${url} ${code} says what it is`);
      }
      for (const name of url.match(/\{(\w+)\}/g) ?? []) {
        t.ok(op.parameters?.some((p) => p.in === 'path' && `{${p.name}}` === name), `${r.method} ${url} documents ${name}`);
      }
      t.equal(Boolean(op.requestBody), Boolean(r.schema?.body), `${r.method} ${url}: a body in the document exactly when the route has a body schema`);
      if (r.schema?.body) t.ok(op.responses['400'], `${r.method} ${url} documents the 400 of a body that breaks its schema`);
    }
    t.match(doc.paths['/api/v1/nodes']!['post']!, { security: [{ bearer: [] }], responses: { 401: {} } }, 'a change needs the token (from the route\'s access rule)');
    t.same(doc.paths['/files/{path}']!['get']!.security, [], 'boot files are open');
  });

  t.test('the replies fit their schemas', async (t) => {
    await s.server.store.put('leases', '198.18.0.100', { ip: '198.18.0.100', mac: '52:54:00:00:00:99', subnet: '198.18.0.0/24', state: 'bound', expiresAt: 2, updatedAt: 1 });
    await fetch(`${s.base}/boot/52-54-00-00-00-01.ipxe`);
    const urls: Record<string, string> = {
      '/api/v1/nodes/:name': '/api/v1/nodes/n001', '/api/v1/nodes/:name/boot': '/api/v1/nodes/n001/boot',
      '/api/v1/profiles/:name': '/api/v1/profiles/compute', '/api/v1/leases/:ip': '/api/v1/leases/198.18.0.100',
    };
    let checked = 0;
    for (const r of s.server.http!.routes) {
      const replies = (r.schema?.response ?? {}) as Record<string, unknown>;
      if (r.method !== 'GET' || !(replies['200'] instanceof z.ZodType) || r.url.includes('*') || (r.url.includes(':') && !urls[r.url])) continue;
      const got = await s.authed(urls[r.url] ?? r.url);
      // Most answer 200 here; /api/v1/ntp answers its documented 404 (NTP is off in this server).
      const reply = replies[String(got.status)];
      t.ok(reply instanceof z.ZodType, `GET ${r.url}: ${got.status} is documented`);
      const parsed = (reply as z.ZodType).safeParse(await got.json());
      t.ok(parsed.success, `GET ${r.url} ${got.status} fits its schema: ${parsed.error?.message.slice(0, 300) ?? ''}`);
      checked++;
    }
    t.ok(checked >= 12, `${checked} replies checked`);
    const failed = await s.authed('/api/v1/nodes/nope');
    t.ok((s.server.http!.routes.find((r) => r.url === '/api/v1/nodes/:name')!.schema!.response as Record<string, z.ZodType>)['404']!.safeParse(await failed.json()).success, 'an error fits the error schema');
  });

  t.test('a request that breaks a schema: the same field-naming 400 as before', async (t) => {
    const cases: Array<[string, string, unknown, object]> = [
      ['POST', '/api/v1/nodes', { name: 'n003', macs: ['zz'], ip: '198.18.0.13' }, bad('macs[0]: expected a MAC address like 52:54:00:12:34:56', 'macs[0]')],
      ['POST', '/api/v1/nodes', { name: 'n003', mac: 'zz', ip: '198.18.0.13' }, bad('macs: Invalid input', 'macs')],
      ['POST', '/api/v1/nodes', { name: 'n003', mac: '52:54:00:00:00:03', macs: ['52:54:00:00:00:04'], ip: '198.18.0.13' }, bad('unknown field mac')],
      ['POST', '/api/v1/nodes', { name: 'n003', macs: [], ip: '198.18.0.13' }, bad('macs: a node needs at least one MAC', 'macs')],
      ['POST', '/api/v1/nodes', { name: 'n003', macs: '52:54:00:00:00:03', ip: 13 }, bad('ip: expected an IPv4 address like 198.18.0.1', 'ip')],
      ['POST', '/api/v1/nodes', { name: 'n003', macs: '52:54:00:00:00:03', ip: '198.18.0.13', profile: '' }, bad('profile: Too small: expected string to have >=1 characters', 'profile')],
      ['POST', '/api/v1/nodes', { name: 'n003', macs: '52:54:00:00:00:03', ip: '198.18.0.13', colour: 'red' }, bad('unknown field colour')],
      ['POST', '/api/v1/nodes', { macs: '52:54:00:00:00:03', ip: '198.18.0.13' }, bad('name: expected a host name like n001 (letters, digits, hyphens)', 'name')],
      ['POST', '/api/v1/nodes', { name: 'n003', macs: '52:54:00:00:00:03', ip: '198.18.0.13', root: { bogus: 1 } }, bad('root.kind: expected kind: iscsi (the only kind of network root disk so far)', 'root.kind')],
      ['POST', '/api/v1/nodes', { name: 'n003', macs: '52:54:00:00:00:03', ip: '198.18.0.13', ip6: 'nope' }, bad('ip6: expected an IPv6 address like fd00::11', 'ip6')],
      ['POST', '/api/v1/nodes', [1, 2, 3], bad('expected a JSON object as the request body')],
      ['POST', '/api/v1/nodes', null, bad('expected a JSON object as the request body')],
      ['PATCH', '/api/v1/nodes/n002', { ip: 'x' }, bad('ip: expected an IPv4 address like 198.18.0.1', 'ip')],
      ['PATCH', '/api/v1/nodes/n002', { mac: '52:54:00:00:00:51' }, bad('unknown field mac')],
      ['PATCH', '/api/v1/nodes/n002', { name: 'n051' }, bad('name: a node cannot be renamed; remove it and add it under the new name', 'name')],
      ['PATCH', '/api/v1/nodes/n002', 'str', bad('expected a JSON object as the request body')],
      ['POST', '/api/v1/hosts', { name: 'x y', ip: '198.18.0.9' }, bad('name: expected a DNS name like _slurmctld._tcp or head.cluster.lab', 'name')],
      ['POST', '/api/v1/hosts', { name: 'x', ip: '198.18.0.9', extra: 1 }, bad('unknown field extra')],
      ['POST', '/api/v1/srv', { name: '_x._tcp', target: 'head', port: '80' }, bad('port: expected a port number 0-65535', 'port')],
      ['POST', '/api/v1/srv', { name: '_x._tcp', target: 'head', port: 80, weight: 1.5 }, bad('weight: Invalid input: expected int, received number', 'weight')],
      ['POST', '/ui/session', {}, bad('token: expected {"token": "<the token from <state>/api-token>"}', 'token')],
      ['POST', '/ui/session', null, bad('token: expected {"token": "<the token from <state>/api-token>"}', 'token')],
    ];
    t.equal((await s.authed('/api/v1/nodes', { method: 'POST', json: { name: 'n002', macs: '52:54:00:00:00:02', ip: '198.18.0.12' } })).status, 201);
    for (const [method, url, json, want] of cases) {
      const r = await s.authed(url, { method, json });
      t.equal(r.status, 400, `${method} ${url} ${JSON.stringify(json)}`);
      t.same(await r.json(), want);
    }
    t.same((await (await s.authed('/api/v1/nodes')).json() as Array<{ name: string }>).map((n) => n.name), ['n001', 'n002'], 'nothing was added');
  });

  t.test('the interactive page: open, with its files from node_modules; the document it shows is a read', async (t) => {
    const page = await fetch(`${s.base}/api/docs/`);
    t.equal(page.status, 200);
    t.match(await page.text(), /swagger-ui-bundle\.js/);
    t.match(page.headers.get('content-security-policy'), /default-src 'none'/, 'under the server\'s own CSP');
    const bundle = await fetch(`${s.base}/api/docs/static/swagger-ui-bundle.js`);
    t.equal(bundle.status, 200);
    t.match(bundle.headers.get('content-type'), /javascript/);
    t.equal((await fetch(`${s.base}/api/docs/json`)).status, 401, 'the document needs what reads need');
    t.same(await (await s.authed('/api/docs/json')).json(), doc, 'the page shows the same document');
  });
});
