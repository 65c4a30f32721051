/**
 * Issue 15 finding 7: slow partial-header connections took every file
 * descriptor. Raw sockets as the attacker, on loopback from 127.0.0.1; a real
 * curl from 127.0.0.2 (another client address) as the victim. The server
 * listens on 127.0.0.1 only.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { startHttpServer } from '../helpers/http-server.ts';
import { missingTools } from '../helpers/tools.ts';

interface Held { socket: net.Socket; closed: boolean; received: string }

/** A connection that sends half a request and never finishes it. */
function slowClient(port: number, localAddress: string): Promise<Held> {
  return new Promise((resolve, reject) => {
    const held: Held = { socket: net.connect({ host: '127.0.0.1', port, localAddress }), closed: false, received: '' };
    held.socket.on('data', (d: Buffer) => { held.received += d.toString('latin1'); });
    held.socket.on('close', () => { held.closed = true; });
    held.socket.on('error', () => undefined);
    held.socket.once('connect', () => { held.socket.write('GET /files/f HTTP/1.1\r\nHost: head\r\nX-Slow: '); resolve(held); });
    held.socket.once('error', reject);
  });
}

async function until(cond: () => boolean, ms: number): Promise<void> {
  for (let waited = 0; !cond() && waited < ms; waited += 20) await new Promise((r) => setTimeout(r, 20));
}

function curl(url: string, from: string, headers: string[] = []): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', '--interface', from, ...headers.flatMap((h) => ['-H', h]), '-o', '-', '-w', '\n%{http_code}', url], (err, stdout) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, out: stdout });
    });
  });
}

/** A refusal counter, read with curl from 127.0.0.4 (an address that holds no connection). */
async function dropped(base: string, token: string, reason: string): Promise<number> {
  let got = await curl(`${base}/metrics`, '127.0.0.4', [`Authorization: Bearer ${token}`]);
  // The total may still be full of connections the test just closed: try again for a while.
  for (let i = 0; i < 50 && got.code !== 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    got = await curl(`${base}/metrics`, '127.0.0.4', [`Authorization: Bearer ${token}`]);
  }
  return Number(new RegExp(`^bootherd_http_dropped_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec(got.out)?.[1] ?? 0);
}

t.test('connections per client and in total are bounded; another client is still served', { skip: missingTools('curl') }, async (t) => {
  const s = await startHttpServer(t, { files: { f: 'hello\n' }, http: 'maxConnectionsPerClient: 20, maxConnections: 30, headersTimeout: 60, requestTimeout: 60' });
  const port = Number(new URL(s.base).port);
  const attack = await Promise.all(Array.from({ length: 25 }, () => slowClient(port, '127.0.0.1')));
  t.teardown(() => { for (const h of attack) h.socket.destroy(); });
  await until(() => attack.filter((h) => h.closed).length >= 5, 5000);
  t.equal(attack.filter((h) => h.closed).length, 5, 'the 5 connections over the per-client limit are closed');
  t.equal(attack.filter((h) => !h.closed).length, 20, 'the first 20 stay open (their header time has not run out)');

  const other = await curl(`${s.base}/files/f`, '127.0.0.2');
  t.equal(other.code, 0, 'curl from another address connects');
  t.equal(other.out, 'hello\n\n200', 'and gets the file');
  const same = await curl(`${s.base}/files/f`, '127.0.0.1');
  t.not(same.code, 0, 'curl from the attacking address is refused while it holds its 20');

  // The total: 10 more from a third address fit under 30 only in part.
  const more = await Promise.all(Array.from({ length: 15 }, () => slowClient(port, '127.0.0.3')));
  t.teardown(() => { for (const h of more) h.socket.destroy(); });
  await until(() => more.filter((h) => h.closed).length >= 5, 5000);
  t.equal(more.filter((h) => !h.closed).length, 10, 'only 10 more fit under maxConnections 30');

  // The metrics are read from 127.0.0.1, so its connections go first.
  for (const h of more) h.socket.destroy();
  const perClient = await dropped(s.base, s.token, 'client-connection-limit');
  t.ok(perClient >= 6, `per-client refusals are counted (${perClient}: 5 sockets and curl)`);
  t.ok(await dropped(s.base, s.token, 'connection-limit') >= 5, 'and refusals over the total');
});

t.test('a client that never finishes its headers is answered 408 and closed at headersTimeout', { skip: missingTools('curl') }, async (t) => {
  const s = await startHttpServer(t, { files: { f: 'hello\n' }, http: 'headersTimeout: 1, requestTimeout: 2' });
  const port = Number(new URL(s.base).port);
  const slow = await Promise.all(Array.from({ length: 3 }, () => slowClient(port, '127.0.0.1')));
  t.teardown(() => { for (const h of slow) h.socket.destroy(); });
  // Node's own default is 60 s; the bound here is 15 s, so the test fails without the setting.
  await until(() => slow.every((h) => h.closed), 15_000);
  t.ok(slow.every((h) => h.closed), 'every slow connection was closed by the server');
  t.ok(slow.every((h) => h.received.startsWith('HTTP/1.1 408 ')), 'with a 408');
  t.ok(await dropped(s.base, s.token, 'request-timeout') >= 3, 'and counted');
});

t.test('config: requestTimeout below headersTimeout names the field', async (t) => {
  const { parseConfig, ConfigError } = await import('../../src/config/load.ts');
  t.throws(() => parseConfig('head: { address: 198.18.0.1 }\nhttp: { headersTimeout: 20, requestTimeout: 10 }\n', '<test>'), ConfigError);
  try { parseConfig('head: { address: 198.18.0.1 }\nhttp: { headersTimeout: 20, requestTimeout: 10 }\n', '<test>'); } catch (e) {
    t.match((e as Error).message, /http\.requestTimeout/, 'the message names http.requestTimeout');
  }
});
