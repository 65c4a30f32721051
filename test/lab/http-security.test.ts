/**
 * Issue 15 findings 13, 15 and 16, with curl in lab namespaces against a real
 * `bootherd serve`: a node (n001 at 198.18.0.11) and another machine on the
 * same cluster network (198.18.0.50) as the attacker.
 *   13  symbolic links out of the files directory (/etc/passwd, the API
 *       token, a directory link upwards) are refused; a link inside is served
 *   15  the "booted" call-back for n001 from another address is refused and
 *       not recorded; from n001's own address it is
 *   16  the UI's security headers, and the login that sets an HttpOnly cookie
 */
import t from 'tap';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startLabServer } from '../helpers/lab-server.ts';

const HEAD = 'http://198.18.0.1';

const config = (state: string) => {
  const dir = path.dirname(state);
  const files = path.join(dir, 'files');
  mkdirSync(path.join(files, 'images'), { recursive: true });
  writeFileSync(path.join(files, 'images', 'vmlinuz'), 'kernel\n');
  symlinkSync('/etc/passwd', path.join(files, 'passwd'));
  symlinkSync(path.join(state, 'api-token'), path.join(files, 'token'));
  symlinkSync('../..', path.join(files, 'images', 'up'));
  symlinkSync('images/vmlinuz', path.join(files, 'kernel-link'));
  return `
cluster: { domain: lab.test }
head: { name: head, address: 198.18.0.1 }
state: ${state}
files: ${files}
subnets:
  - network: 198.18.0.0/24
nodes:
  - { name: n001, macs: [52:54:00:00:00:01], ip: 198.18.0.11 }
tftp: { enabled: false }
ntp: { enabled: false }
http: { readOpenTo: none }
`;
};

t.test('HTTP security: links out of the files directory, the booted call-back, UI headers and cookie', async (t) => {
  const s = await startLabServer(t, { tag: 'hs', config, clients: 2, clientCidr: (i) => ['198.18.0.11/24', '198.18.0.50/24'][i] });
  const [node, attacker] = s.lab.clients as [typeof s.lab.clients[0], typeof s.lab.clients[0]];
  const token = readFileSync(path.join(s.dir, 'state', 'api-token'), 'utf8').trim();
  const curl = (ns: string, ...args: string[]) => s.lab.run(ns, 'curl', ['-sS', '--max-time', '20', ...args], 30_000);
  const status = (ns: string, ...args: string[]) => curl(ns, '-o', '/dev/null', '-w', '%{http_code}', ...args).stdout;

  t.test('13: symbolic links that leave the files directory are refused', async (t) => {
    for (const p of ['/files/passwd', '/files/token', '/files/images/up/cluster.yaml']) {
      const r = curl(attacker.ns, '-w', '\n%{http_code}', `${HEAD}${p}`).stdout;
      t.match(r, /\n403$/, `${p}: 403`);
      t.notMatch(r, /root:|cluster:/, 'and none of the target');
      t.notOk(r.includes(token), 'the token does not leak');
    }
    t.match(curl(attacker.ns, `${HEAD}/files/passwd`).stdout, /"message":"path: passwd leads outside the boot file root \(a symbolic link\)[^"]*","field":"path"/, 'the message says why');
    t.equal(curl(attacker.ns, `${HEAD}/files/kernel-link`).stdout, 'kernel\n', 'a link that stays inside is served');
    t.equal(status(attacker.ns, `${HEAD}/files/images/vmlinuz`), '200');
  });

  t.test('15: the booted call-back only from the node\'s own address', async (t) => {
    const booted = `${HEAD}/boot/52-54-00-00-00-01/booted`;
    const foreign = curl(attacker.ns, '-w', '\n%{http_code}', booted).stdout;
    t.match(foreign, /\n403$/, 'from 198.18.0.50: 403');
    t.match(foreign, /only n001 itself \(198\.18\.0\.11\) may report that it booted/);
    t.equal(status(attacker.ns, '-X', 'POST', '-d', 'x=1', booted), '403', 'POST too');
    t.equal(status(attacker.ns, '-H', `Authorization: Bearer ${token}`, `${HEAD}/api/v1/nodes/n001/boot`), '404', 'nothing recorded: n001 has no boot timeline');
    t.equal(curl(node.ns, booted).stdout, 'ok n001\n', 'from 198.18.0.11 itself: accepted');
    const timeline = JSON.parse(curl(attacker.ns, '-H', `Authorization: Bearer ${token}`, `${HEAD}/api/v1/nodes/n001/boot`).stdout) as { stages: Array<{ stage: string }> };
    t.same(timeline.stages.map((x) => x.stage), ['booted'], 'recorded once, from the node');
  });

  t.test('16: UI headers; the login sets an HttpOnly cookie that reads', async (t) => {
    for (const p of ['/', '/ui/app.js', '/api/v1/nodes', '/files/images/vmlinuz']) {
      const h = curl(attacker.ns, '-s', '-o', '/dev/null', '-D', '-', `${HEAD}${p}`).stdout;
      t.match(h, /^content-security-policy: default-src 'none'; script-src 'self'; style-src 'self';.* frame-ancestors 'none'\r$/im, `${p}: CSP`);
      t.match(h, /^x-content-type-options: nosniff\r$/im, `${p}: nosniff`);
      t.match(h, /^x-frame-options: DENY\r$/im, `${p}: no framing`);
    }
    const wrong = curl(attacker.ns, '-s', '-D', '-', '-o', '/dev/null', '-H', 'content-type: application/json', '-d', '{"token":"guess"}', `${HEAD}/ui/session`).stdout;
    t.match(wrong, /^HTTP\/1\.1 401/, 'a wrong token: 401');
    t.notMatch(wrong, /set-cookie/i, 'and no cookie');
    const jar = path.join(s.dir, 'jar');
    const login = curl(attacker.ns, '-s', '-D', '-', '-o', '/dev/null', '-c', jar, '-H', 'content-type: application/json', '-d', JSON.stringify({ token }), `${HEAD}/ui/session`).stdout;
    t.match(login, /^HTTP\/1\.1 204/, 'the right token: 204');
    t.match(login, /^set-cookie: bootherd_token=[^;]+; Path=\/; HttpOnly; SameSite=Strict\r$/im, 'an HttpOnly, SameSite=Strict cookie');
    t.equal(status(attacker.ns, '-b', jar, `${HEAD}/api/v1/nodes`), '200', 'the cookie reads');
    t.equal(status(attacker.ns, '-b', jar, '-X', 'DELETE', `${HEAD}/api/v1/nodes/n001`), '401', 'but does not write');
    t.equal(status(attacker.ns, `${HEAD}/api/v1/nodes`), '401', 'without it: 401');
  });
});
