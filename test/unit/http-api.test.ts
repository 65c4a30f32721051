/**
 * The REST API, end to end over HTTP on loopback (a real fetch client against
 * the real server): every endpoint, status codes, validation messages that
 * name the field, token checks, bad input that changes nothing, the event
 * stream. The OpenAPI document and the schemas: http-openapi.test.ts.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startHttpServer, type HttpTestServer } from '../helpers/http-server.ts';

const CONFIG = `
profiles:
  compute: { kernel: vmlinuz, initrd: initrd.img, cmdline: console=ttyS0 }
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11, profile: compute }
hosts:
  - { name: nas, ip: 198.18.0.250 }
`;

async function body(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

async function nodeNames(s: HttpTestServer): Promise<string[]> {
  return ((await (await s.authed('/api/v1/nodes')).json()) as Array<{ name: string }>).map((n) => n.name);
}

t.test('REST API', async (t) => {
  const s = await startHttpServer(t, { extra: CONFIG });
  const { base } = s;

  t.test('tokens: changes need it, reads need it off the cluster networks, a cookie only reads', async (t) => {
    t.equal((await fetch(`${base}/api/v1/nodes`)).status, 401, 'read without token from 127.0.0.1 (not a cluster network)');
    const wrong = await fetch(`${base}/api/v1/nodes`, { headers: { authorization: 'Bearer nope' } });
    t.equal(wrong.status, 401);
    t.match((await body(wrong)).message, /wrong bearer token/);
    t.equal(wrong.headers.get('www-authenticate'), 'Bearer realm="bootherd"');
    t.equal((await fetch(`${base}/api/v1/nodes`, { headers: { cookie: `bootherd_token=${s.token}` } })).status, 200, 'the UI cookie reads');
    const post = await fetch(`${base}/api/v1/nodes`, { method: 'POST', headers: { cookie: `bootherd_token=${s.token}`, 'content-type': 'application/json' }, body: '{"name":"x","macs":"52:54:00:00:00:77","ip":"198.18.0.77"}' });
    t.equal(post.status, 401, 'the cookie does not change anything');
    t.equal((await fetch(`${base}/metrics`)).status, 401, '/metrics is a read');
    t.equal((await fetch(`${base}/boot/52-54-00-00-00-99.ipxe`)).status, 200, 'boot scripts are open (firmware has no token)');
    t.equal((await fetch(`${base}/`)).status, 200, 'the UI page is open; its data is not');
    t.same(await nodeNames(s), ['n001'], 'nothing changed');
  });

  t.test('nodes: create, read, update, delete', async (t) => {
    let res = await s.authed('/api/v1/nodes', { method: 'POST', json: { name: 'N002', mac: '52-54-00-00-00-02', ip: '198.18.0.12', profile: 'compute' } });
    t.equal(res.status, 201);
    t.same(await body(res), { name: 'n002', macs: ['52:54:00:00:00:02'], ip: '198.18.0.12', ipFrom: 'reservation', profile: 'compute', source: 'api', lease: null, boot: null }, 'normalised name and MAC');
    res = await s.authed('/api/v1/nodes/n002');
    t.equal(res.status, 200);
    t.equal((await body(res)).ip, '198.18.0.12');
    t.equal(s.server.model.nodeByMac('52:54:00:00:00:02')?.name, 'n002', 'the model (and so DHCP) knows it at once');
    res = await s.authed('/api/v1/nodes/n002', { method: 'PATCH', json: { ip: '198.18.0.22', macs: ['52:54:00:00:00:02', '52:54:00:00:00:22'] } });
    t.equal(res.status, 200);
    t.same((await body(res)).macs, ['52:54:00:00:00:02', '52:54:00:00:00:22']);
    t.equal(s.server.model.nodeByMac('52:54:00:00:00:22')?.ip, '198.18.0.22');
    t.match(await (await fetch(`${base}/boot/52-54-00-00-00-22.ipxe`)).text(), /booting n002 \(198\.18\.0\.22/, 'its script follows the change');
    res = await s.authed('/api/v1/nodes/n002', { method: 'DELETE' });
    t.equal(res.status, 200);
    t.equal(((await body(res)).removed as { name: string }).name, 'n002');
    t.equal((await s.authed('/api/v1/nodes/n002')).status, 404);
    t.equal((await s.authed('/api/v1/nodes/n002', { method: 'DELETE' })).status, 404);
    t.match(await (await fetch(`${base}/boot/52-54-00-00-00-22.ipxe`)).text(), /is not a node of lab\.test yet/, 'its MAC is unknown again');
  });

  t.test('nodes: validation names the field; conflicts are 409', async (t) => {
    const cases: Array<[unknown, number, string, RegExp]> = [
      [{ name: 'n003', macs: ['zz'], ip: '198.18.0.13' }, 400, 'macs[0]', /expected a MAC address/],
      [{ name: 'n003', macs: '52:54:00:00:00:03', ip: 13 }, 400, 'ip', /expected an IPv4 address/],
      [{ name: 'n003', macs: '52:54:00:00:00:03', ip: '10.0.0.3' }, 400, 'ip', /none of the cluster's subnets/],
      [{ name: 'n003', macs: '52:54:00:00:00:03', ip: '198.18.0.13', profile: 'gpu' }, 400, 'profile', /no profile named gpu/],
      [{ name: 'n003', macs: '52:54:00:00:00:03', ip: '198.18.0.13', colour: 'red' }, 400, '', /unknown field colour/],
      [{ name: 'bad name!', macs: '52:54:00:00:00:03', ip: '198.18.0.13' }, 400, 'name', /expected a host name/],
      [{ macs: '52:54:00:00:00:03', ip: '198.18.0.13' }, 400, 'name', /required|expected/],
      [{ name: 'n001', macs: '52:54:00:00:00:03', ip: '198.18.0.13' }, 409, 'name', /exists already/],
      [{ name: 'n003', macs: '52:54:00:00:00:01', ip: '198.18.0.13' }, 409, 'macs[0]', /already belongs to node n001/],
      [{ name: 'n003', macs: '52:54:00:00:00:03', ip: '198.18.0.11' }, 409, 'ip', /already reserved for node n001/],
    ];
    for (const [input, status, field, message] of cases) {
      const res = await s.authed('/api/v1/nodes', { method: 'POST', json: input });
      const b = await body(res);
      t.equal(res.status, status, `${JSON.stringify(input)} -> ${status}`);
      if (field) t.equal(b.field, field, `names ${field}`);
      t.match(b.message, message);
    }
    const cfg = await s.authed('/api/v1/nodes/n001', { method: 'PATCH', json: { ip: '198.18.0.31' } });
    t.equal(cfg.status, 409, 'cluster-file nodes are changed in the file');
    t.match((await body(cfg)).message, /declared in the cluster file/);
    t.equal((await s.authed('/api/v1/nodes/n001', { method: 'DELETE' })).status, 409);
    const rename = await s.authed('/api/v1/nodes/n001', { method: 'PATCH', json: { name: 'n009' } });
    t.equal(rename.status, 409, 'config node first');
    t.same(await nodeNames(s), ['n001'], 'nothing was added');
  });

  // Issue 15 finding 14: these were accepted, and DHCP then handed them out.
  t.test('nodes: the head\'s, the network and the broadcast address are refused, naming ip', async (t) => {
    const cases: Array<[string, RegExp]> = [
      ['198.18.0.1', /198\.18\.0\.1 is a head's address/],
      ['198.18.0.0', /198\.18\.0\.0 is the network address of 198\.18\.0\.0\/24/],
      ['198.18.0.255', /198\.18\.0\.255 is the broadcast address of 198\.18\.0\.0\/24/],
    ];
    for (const [ip, message] of cases) {
      const res = await s.authed('/api/v1/nodes', { method: 'POST', json: { name: 'n040', macs: '52:54:00:00:00:40', ip } });
      const b = await body(res);
      t.equal(res.status, 400, `POST ip ${ip}: 400`);
      t.equal(b.field, 'ip', 'names ip');
      t.match(b.message, message);
    }
    t.equal((await s.authed('/api/v1/nodes', { method: 'POST', json: { name: 'n041', macs: '52:54:00:00:00:41', ip: '198.18.0.41' } })).status, 201);
    for (const [ip, message] of cases) {
      const res = await s.authed('/api/v1/nodes/n041', { method: 'PATCH', json: { ip } });
      t.equal(res.status, 400, `PATCH ip ${ip}: 400`);
      t.match((await body(res)).message, message);
    }
    t.match(await body(await s.authed('/api/v1/nodes/n041')), { ip: '198.18.0.41' }, 'the node kept its address');
    t.equal((await s.authed('/api/v1/nodes/n041', { method: 'DELETE' })).status, 200);
    t.same(await nodeNames(s), ['n001'], 'nothing else was added');
  });

  t.test('bad input: malformed JSON, wrong types, huge bodies, wrong content type — 4xx, nothing changed', async (t) => {
    const raw = (b: string, type = 'application/json') => s.authed('/api/v1/nodes', { method: 'POST', headers: { 'content-type': type }, body: b });
    let res = await raw('{"name": "n004", ');
    t.equal(res.status, 400);
    t.match((await body(res)).message, /malformed JSON/);
    res = await raw('[1,2,3]');
    t.equal(res.status, 400);
    t.match((await body(res)).message, /expected a JSON object/);
    res = await raw('"just a string"');
    t.equal(res.status, 400);
    res = await raw('');
    t.equal(res.status, 400);
    t.match((await body(res)).message, /empty body/);
    res = await raw(JSON.stringify({ name: 'n004', macs: '52:54:00:00:00:04', ip: '198.18.0.14', pad: 'x'.repeat(200_000) }));
    t.equal(res.status, 413);
    t.match((await body(res)).message, /larger than 65536 bytes \(http\.bodyLimit\)/);
    res = await raw('name=n004', 'application/x-www-form-urlencoded');
    t.equal(res.status, 415);
    res = await s.authed('/api/v1/nodes', { method: 'POST', json: { name: ['n004'], macs: { a: 1 }, ip: null } });
    t.equal(res.status, 400);
    t.ok((await body(res)).field, 'names a field');
    t.same(await nodeNames(s), ['n001'], 'nothing changed');
    const metrics = await (await s.authed('/metrics')).text();
    t.match(metrics, /bootherd_http_dropped_total\{reason="bad-json"\} 1/);
    t.match(metrics, /bootherd_http_dropped_total\{reason="too-large"\} 1/);
  });

  t.test('profiles', async (t) => {
    const list = (await (await s.authed('/api/v1/profiles')).json()) as Array<{ name: string }>;
    t.same(list.map((p) => p.name).sort(), ['compute', 'default']);
    const p = await body(await s.authed('/api/v1/profiles/compute'));
    t.same(p.initrd, ['initrd.img']);
    const missing = await s.authed('/api/v1/profiles/gpu');
    t.equal(missing.status, 404);
    t.match((await body(missing)).message, /known: default, compute/);
  });

  t.test('hosts and SRV records', async (t) => {
    let res = await s.authed('/api/v1/hosts', { method: 'POST', json: { name: 'Storage1', ip: '198.18.0.251' } });
    t.equal(res.status, 201);
    t.same(await body(res), { name: 'storage1', ip: '198.18.0.251', source: 'api' });
    t.same(((await (await s.authed('/api/v1/hosts')).json()) as Array<{ name: string }>).map((h) => h.name), ['nas', 'storage1']);
    res = await s.authed('/api/v1/hosts', { method: 'POST', json: { name: 'nas', ip: '198.18.0.252' } });
    t.equal(res.status, 409, 'cluster-file hosts are changed in the file');
    res = await s.authed('/api/v1/hosts', { method: 'POST', json: { name: 'x', ip: '300.1.1.1' } });
    t.equal((await body(res)).field, 'ip');
    t.equal((await s.authed('/api/v1/hosts/storage1', { method: 'DELETE' })).status, 200);
    t.equal((await s.authed('/api/v1/hosts/storage1', { method: 'DELETE' })).status, 404);

    res = await s.authed('/api/v1/srv', { method: 'POST', json: { name: '_slurmctld._tcp', target: 'head.lab.test', port: 6817 } });
    t.equal(res.status, 201);
    t.same(await body(res), { name: '_slurmctld._tcp', target: 'head.lab.test', port: 6817, priority: 0, weight: 0, source: 'api' });
    t.equal(((await (await s.authed('/api/v1/srv')).json()) as unknown[]).length, 1);
    res = await s.authed('/api/v1/srv', { method: 'POST', json: { name: '_x._tcp', target: 'head', port: 70000 } });
    t.equal((await body(res)).field, 'port');
    t.equal((await s.authed('/api/v1/srv/_slurmctld._tcp/head.lab.test/notaport', { method: 'DELETE' })).status, 400);
    t.equal((await s.authed('/api/v1/srv/_slurmctld._tcp/head.lab.test/6817', { method: 'DELETE' })).status, 200);
    t.equal((await s.authed('/api/v1/srv/_slurmctld._tcp/head.lab.test/6817', { method: 'DELETE' })).status, 404);
  });

  t.test('leases: list, one, release', async (t) => {
    const now = Date.now();
    await s.server.store.put('leases', '198.18.0.11', { ip: '198.18.0.11', mac: '52:54:00:00:00:01', node: 'n001', subnet: '198.18.0.0/24', state: 'bound', expiresAt: now + 600_000, updatedAt: now });
    await s.server.store.put('leases', '198.18.0.100', { ip: '198.18.0.100', mac: '52:54:00:00:00:99', subnet: '198.18.0.0/24', state: 'bound', expiresAt: now + 600_000, updatedAt: now });
    const list = (await (await s.authed('/api/v1/leases')).json()) as Array<{ ip: string }>;
    t.same(list.map((l) => l.ip), ['198.18.0.11', '198.18.0.100'], 'by address');
    t.equal((await body(await s.authed('/api/v1/leases/198.18.0.100'))).mac, '52:54:00:00:00:99');
    t.equal((await s.authed('/api/v1/leases/198.18.0.101')).status, 404);
    t.equal((await s.authed('/api/v1/leases/banana')).status, 400);
    t.equal((await fetch(`${base}/api/v1/leases/198.18.0.100/release`, { method: 'POST' })).status, 401);
    const res = await s.authed('/api/v1/leases/198.18.0.100/release', { method: 'POST' });
    t.equal(res.status, 200);
    t.equal((await body(res)).state, 'released');
    t.equal(s.server.dhcp!.leases.lease(0xc6120064)?.state, 'released', 'the DHCP lease table sees it');
    const n = await body(await s.authed('/api/v1/nodes/n001'));
    t.equal((n.lease as { state: string }).state, 'bound', 'a node shows the lease on its address');
  });

  t.test('boot timeline, NTP, status, metrics, the UI files, unknown routes', async (t) => {
    t.equal((await s.authed('/api/v1/nodes/n001/boot')).status, 404, 'no boot yet');
    await fetch(`${base}/boot/52-54-00-00-00-01.ipxe`);
    const tl = await body(await s.authed('/api/v1/nodes/n001/boot'));
    t.same((tl.stages as Array<{ stage: string }>).map((x) => x.stage), ['ipxe-script']);
    t.equal((await fetch(`${base}/boot/52-54-00-00-00-01/booted`)).status, 403, 'the call-back only from cluster networks');
    t.equal((await s.authed('/boot/banana/booted')).status, 400, 'a bad MAC (the token stands in for a cluster address)');
    t.equal((await s.authed('/boot/52-54-00-00-00-01/booted', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'up=1' })).status, 200, 'POST with a form body, as wget --post-data sends');
    const after = await body(await s.authed('/api/v1/nodes/n001/boot'));
    t.same((after.stages as Array<{ stage: string }>).map((x) => x.stage), ['ipxe-script', 'booted']);
    t.equal((await fetch(`${base}/boot/n001.ipxe`)).status, 400);

    const ntp = await s.authed('/api/v1/ntp');
    t.equal(ntp.status, 404);
    t.match((await body(ntp)).message, /NTP service is not running/);
    const st = await body(await s.authed('/api/v1/status'));
    t.equal(st.name, 'test');
    t.match(st.counts, { nodes: 1, leases: 2 });
    t.match(st.services, { http: { readOpenTo: 'cluster' }, dhcp: { running: true } });

    const m = await s.authed('/metrics');
    t.match(m.headers.get('content-type'), /text\/plain/);
    t.match(await m.text(), /bootherd_http_requests_total\{kind="api",code="200"\} \d+/);
    t.match(await (await fetch(`${base}/`)).text(), /<title>bootherd<\/title>/);
    t.match((await fetch(`${base}/ui/app.js`)).headers.get('content-type'), /javascript/);
    t.equal((await fetch(`${base}/ui/../state/api-token`)).status, 404);
    const nf = await fetch(`${base}/api/v1/nope`);
    t.equal(nf.status, 404);
    t.match((await body(nf)).message, /no route GET \/api\/v1\/nope/);
  });

  t.test('event stream: a node added through the API arrives as an event', async (t) => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 10_000);
    const res = await fetch(`${base}/api/v1/events`, { headers: { authorization: `Bearer ${s.token}` }, signal: ac.signal });
    t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    await s.authed('/api/v1/nodes', { method: 'POST', json: { name: 'n005', macs: '52:54:00:00:00:05', ip: '198.18.0.15' } });
    let text = '';
    while (!text.includes('event: node\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    clearTimeout(timer);
    ac.abort();
    t.match(text, /event: node\ndata: \{"name":"n005"/);
  });

  t.test('access and error logs', async (t) => {
    const dir = path.join(s.dir, 'state', 'logs');
    const access = readFileSync(path.join(dir, 'api_access_log'), 'utf8');
    t.match(access, /^127\.0\.0\.1 - api \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "POST \/api\/v1\/nodes HTTP\/1\.1" 201 \d+ "-" "\S+"$/m);
    const errors = readFileSync(path.join(dir, 'api_error_log'), 'utf8');
    t.match(errors, /\[http:warn\] \[pid \d+\] \[client 127\.0\.0\.1:\d+\] POST \/api\/v1\/nodes: the request body is larger than/);
  });
});
