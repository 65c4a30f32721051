/**
 * The sendfile pump on loopback TCP: a whole range arrives byte for byte, a
 * client that reads nothing is cut after the stall timeout, a connection
 * closed midway cancels its transfer, and no descriptor is left behind.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SendfilePump } from '../../src/net/sendfile-pump.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-sendfile-'));
const file = path.join(dir, 'initrd');
const body = randomBytes((24 << 20) + 321);
writeFileSync(file, body);
const openFds = () => readdirSync('/proc/self/fd').length;

/** A loopback connection: the server's end (handed to the pump) and the client's. */
async function connection(t: { teardown(fn: () => unknown): void }): Promise<{ server: Socket; client: Socket }> {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
  const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
  const server = await accepted;
  listener.close();
  t.teardown(() => { client.destroy(); server.destroy(); });
  return { server, client };
}

/** The whole file to a client that reads nothing; `during` runs 100 ms in (or never). */
async function stalledTransfer(t: { teardown(fn: () => unknown): void }, pump: SendfilePump, during?: (server: Socket) => void) {
  const { server, client } = await connection(t);
  client.pause();
  const fh = await open(file, 'r');
  if (during) setTimeout(() => during(server), 100);
  const end = await pump.send(server, fh.fd, 0, body.length);
  await fh.close();
  return end;
}

t.test('a range arrives whole, after what Node wrote first', async (t) => {
  const pump = new SendfilePump(10_000);
  t.teardown(() => pump.close());
  const { server, client } = await connection(t);
  const before = openFds();
  const chunks: Buffer[] = [];
  client.on('data', (d: Buffer) => chunks.push(d));
  const fh = await open(file, 'r');
  server.write('HEAD\n');
  const end = await pump.send(server, fh.fd, 1000, body.length - 1000);
  await fh.close();
  t.same(end, { ok: true, sent: body.length - 1000 });
  t.equal(openFds(), before, 'the pump kept no descriptor of the transfer');
  server.end();
  await new Promise((resolve) => client.once('end', resolve));
  const got = Buffer.concat(chunks);
  t.equal(got.subarray(0, 5).toString(), 'HEAD\n', 'what Node wrote first comes first');
  t.ok(got.subarray(5).equals(body.subarray(1000)), 'then the range, byte for byte');
  t.equal(pump.activeTransfers, 0);
});

t.test('a client that reads nothing is cut after the stall timeout', async (t) => {
  const pump = new SendfilePump(300);
  t.teardown(() => pump.close());
  const end = await stalledTransfer(t, pump);
  t.equal(end.ok, false);
  t.match(end, { reason: /took nothing for the stall timeout/ });
  t.ok(end.sent > 0 && end.sent < body.length, `some bytes went before the stall (${end.sent})`);
});

t.test('closing the connection midway cancels the transfer', async (t) => {
  const pump = new SendfilePump(10_000);
  t.teardown(() => pump.close());
  const end = await stalledTransfer(t, pump, (server) => server.destroy());
  t.match(end, { ok: false, reason: /cancelled/ });
  t.equal(pump.activeTransfers, 0);
});

t.test('closing the pump ends its transfers', async (t) => {
  const pump = new SendfilePump(10_000);
  t.match(await stalledTransfer(t, pump, () => pump.close()), { ok: false, reason: /cancelled/ });
});
