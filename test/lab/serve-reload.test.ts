/**
 * `bootherd serve` as systemd runs it (Type=notify, ExecReload sends SIGHUP):
 * READY=1 on its NOTIFY_SOCKET once it serves; SIGHUP with a changed node
 * restarts the services in the same process and dig sees the change; a
 * log.level change applies without a restart; an invalid file is refused
 * and the old one keeps serving; every reload is framed RELOADING=1, READY=1.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLabServer } from '../helpers/lab-server.ts';
import { missingTools, notifyReceiver } from '../helpers/tools.ts';

const HEAD = '198.18.0.1';

const config = (ip: string, level = 'info') => (state: string) => `
cluster: { domain: lab.test }
head: { name: head, address: ${HEAD} }
state: ${state}
log: { level: ${level} }
subnets:
  - { network: 198.18.0.0/24, interface: eth0 }
dhcp: { enabled: false }
nodes:
  - { name: n001, macs: ["52:54:00:00:00:01"], ip: ${ip} }
`;

t.test('READY=1, then SIGHUP reloads: a changed node, a log level, an invalid file', { skip: missingTools('python3') }, async (t) => {
  // A path, not an abstract name: abstract sockets belong to a network namespace, and the server runs in the lab's.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bootherd-bhi-notify-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'notify');
  const rx = await notifyReceiver(socket);
  t.teardown(() => rx.close());
  const s = await startLabServer(t, { tag: 'bhir', clients: 1, clientCidr: () => '198.18.0.50/24', config: config('198.18.0.11'), env: { ...process.env, NOTIFY_SOCKET: socket } });
  const state = path.join(s.dir, 'state');
  const ns = s.lab.clients[0]!.ns;
  const dig = () => s.lab.run(ns, 'dig', [`@${HEAD}`, '+short', '+tries=1', '+time=4', 'n001.lab.test'], 20_000).stdout.trim();
  t.equal(await rx.next(), `READY=1\nMAINPID=${s.proc.pid}`, 'READY=1 from the server\'s own PID once it serves');
  t.equal(dig(), '198.18.0.11', 'n001 as the file says');

  // The log comes through a pipe, the notifications through a socket: wait for the log line, no race.
  const logged = async (re: RegExp) => {
    for (let i = 0; i < 200 && !re.test(s.logs()); i++) await new Promise((r) => setTimeout(r, 50));
    return s.logs();
  };
  const hup = async (what: string) => {
    s.proc.kill('SIGHUP');
    t.equal(await rx.next(), 'RELOADING=1', `${what}: RELOADING=1`);
    t.equal(await rx.next(), 'READY=1', `${what}: READY=1 once done`);
  };
  writeFileSync(s.configFile, config('198.18.0.21')(state));
  await hup('a changed node');
  t.equal(dig(), '198.18.0.21', 'dig sees the node\'s new address');
  t.match(await logged(/"msg":"reload: done"/), /"msg":"reload: done"/, 'the services restarted in the same process');
  t.equal(s.proc.exitCode, null, 'which still runs');

  const startsBefore = s.logs().split('"msg":"bootherd started"').length;
  writeFileSync(s.configFile, config('198.18.0.21', 'debug')(state));
  await hup('a log level');
  t.match(await logged(/"logLevel":"debug","msg":"reload: log level changed"/), /"logLevel":"debug","msg":"reload: log level changed"/, 'the new level applies');
  t.equal(s.logs().split('"msg":"bootherd started"').length, startsBefore, 'without restarting the services');

  writeFileSync(s.configFile, readFileSync(s.configFile, 'utf8').replace('ip: 198.18.0.21', 'ip: 198.18.9.21.5'));
  await hup('an invalid file');
  t.match(await logged(/reload refused: the cluster file is invalid/), /reload refused: the cluster file is invalid/, 'is refused, saying so');
  t.equal(dig(), '198.18.0.21', 'and the services go on as they were');
});
