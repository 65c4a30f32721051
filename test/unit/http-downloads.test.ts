/**
 * Boot file bodies, which leave by sendfile on plain HTTP and through a
 * stream on HTTPS, on loopback with Node's own HTTP client: downloads on a
 * kept-alive connection followed by an API call on it, a client that drops
 * out midway (the server forgets the transfer and goes on), and HTTPS.
 * test/lab/http-boot.test.ts does the same with curl in lab namespaces.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { startHttpServer, type HttpTestServer } from '../helpers/http-server.ts';
import { missingTools } from '../helpers/tools.ts';

const initrd = randomBytes((9 << 20) + 77);
const kernel = randomBytes(300_001);

interface Got { status: number; body: Buffer; reusedSocket: boolean }

function get(url: string, opts: https.RequestOptions = {}): Promise<Got> {
  const client = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.get(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), reusedSocket: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

const transfersGauge = async (s: HttpTestServer) => {
  const text = await (await s.authed('/metrics')).text();
  return Number(/^bootherd_http_file_transfers (\d+)$/m.exec(text)?.[1]);
};

t.test('downloads on one kept-alive connection, then an API call on it', async (t) => {
  const s = await startHttpServer(t, { files: { 'initrd.img': initrd, vmlinuz: kernel } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const a = await get(`${s.base}/files/initrd.img`, { agent });
  t.equal(a.status, 200);
  t.ok(a.body.equals(initrd), 'the initrd, byte for byte');
  const b = await get(`${s.base}/files/vmlinuz`, { agent, headers: { range: 'bytes=100-' } });
  t.equal(b.status, 206);
  t.ok(b.reusedSocket, 'the second download used the same connection');
  t.ok(b.body.equals(kernel.subarray(100)), 'a range after a whole file on the same connection');
  const c = await get(`${s.base}/api/v1/status`, { agent, headers: { authorization: `Bearer ${s.token}` } });
  t.ok(c.reusedSocket);
  t.equal(c.status, 200, 'the connection still speaks HTTP after the bodies');
  t.match(JSON.parse(c.body.toString()), { services: { http: { fileTransfers: 0 } } });
});

t.test('a client that drops out midway: the transfer ends and the server goes on', async (t) => {
  const s = await startHttpServer(t, { files: { 'initrd.img': initrd } });
  await new Promise<void>((resolve, reject) => {
    const req = http.get(`${s.base}/files/initrd.img`, (res) => {
      res.once('data', () => { req.destroy(); resolve(); });
    });
    req.on('error', (e) => { if (!req.destroyed) reject(e); });
  });
  let active = await transfersGauge(s);
  for (let i = 0; i < 50 && active !== 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    active = await transfersGauge(s);
  }
  t.equal(active, 0, 'no transfer left behind');
  const logs = path.join(s.dir, 'state', 'logs');
  let access = '';
  let errors = '';
  for (let i = 0; i < 50 && !/ended after/.test(errors); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    access = readFileSync(path.join(logs, 'api_access_log'), 'utf8');
    errors = readFileSync(path.join(logs, 'api_error_log'), 'utf8');
  }
  const bytes = Number(/"GET \/files\/initrd\.img HTTP\/1\.1" 200 (\d+) /.exec(access)?.[1]);
  t.ok(bytes > 0 && bytes < initrd.length, `the access log has the cut download with the bytes that went (${bytes})`);
  const counted = Number(/^bootherd_http_sent_bytes_total\{kind="files"\} (\d+)$/m.exec(await (await s.authed('/metrics')).text())?.[1]);
  t.equal(counted, bytes, 'the bytes counter has them too');
  t.match(errors, /GET \/files\/initrd\.img: the transfer ended after \d+ of 9437261 bytes: (the client reset the connection|the client closed the connection|cancelled)/, 'and the error log says why');
  const again = await get(`${s.base}/files/initrd.img`);
  t.ok(again.body.equals(initrd), 'and the next client gets the whole file');
});

t.test('HTTPS: the body passes through Node\'s TLS, byte for byte', { skip: missingTools('openssl') }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const s = await startHttpServer(t, { files: { 'initrd.img': initrd }, http: `tls: { cert: ${cert}, key: ${key} }` });
  const url = s.base.replace('http:', 'https:');
  const whole = await get(`${url}/files/initrd.img`, { ca: readFileSync(cert) });
  t.equal(whole.status, 200);
  t.ok(whole.body.equals(initrd));
  const part = await get(`${url}/files/initrd.img`, { ca: readFileSync(cert), headers: { range: 'bytes=5-9' } });
  t.ok(part.body.equals(initrd.subarray(5, 10)), 'a range too');
});

t.test('the removed http.fileCacheBytes is named, with the fix', async (t) => {
  const yaml = 'head: { name: h, address: 198.18.0.1 }\nsubnets: [{ network: 198.18.0.0/24 }]\nhttp: { fileCacheBytes: 1024 }\n';
  try {
    parseConfig(yaml, 'cluster.yaml');
    t.fail('accepted');
  } catch (e) {
    t.ok(e instanceof ConfigError);
    t.match((e as Error).message, /http\.fileCacheBytes.*page cache.*remove the field/);
  }
});
