/**
 * Three heads whose etcd members talk TLS to each other (`store: { kind:
 * etcd, tls: { ca, cert, key } }`, certificates made here with openssl, one
 * CA, each head's own certificate for its address): the cluster forms and
 * replicates (a host added on head A resolves on heads B and C); the peer
 * port speaks only TLS, and only to a client whose certificate the CA
 * signed for the address it comes from; the member runs with the --peer-*
 * flags bootherd passed.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HEAD_NAMES, headAddress, startHeads, type HeadProc } from '../helpers/heads.ts';

const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });

/** A CA and, for each name, a certificate for its address signed by it (and one by another CA). */
function makeCerts(dir: string, heads: readonly { name: string; address: string }[]): void {
  for (const ca of ['ca', 'other-ca']) {
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=bootherd test ${ca}`, '-keyout', path.join(dir, `${ca}.key`), '-out', path.join(dir, `${ca}.crt`)]);
  }
  const sign = (name: string, address: string, ca: string) => {
    const ext = path.join(dir, `${name}.ext`);
    writeFileSync(ext, `subjectAltName = IP:${address}\nextendedKeyUsage = serverAuth, clientAuth\n`);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', path.join(dir, `${name}.key`), '-out', path.join(dir, `${name}.csr`)]);
    openssl(['x509', '-req', '-in', path.join(dir, `${name}.csr`), '-CA', path.join(dir, `${ca}.crt`), '-CAkey', path.join(dir, `${ca}.key`),
      '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', path.join(dir, `${name}.crt`)]);
  };
  for (const h of heads) sign(h.name, h.address, 'ca');
  sign('stranger', '198.18.0.50', 'other-ca');
}

t.test('etcd members with peer TLS: the cluster forms and replicates; the peer port takes only the CA\'s certificates', async (t) => {
  const certs = mkdtempSync(path.join(os.tmpdir(), 'bootherd-tls-'));
  makeCerts(certs, HEAD_NAMES.map((name, i) => ({ name, address: headAddress(i) })));
  const h = await startHeads(t, {
    tag: 'ht', clients: [{ mac: '52:54:00:c0:00:01', cidr: '198.18.0.50/24' }],
    store: (self) => `store: { kind: etcd, tls: { ca: ${certs}/ca.crt, cert: ${certs}/${self.name}.crt, key: ${certs}/${self.name}.key } }`,
    config: () => 'subnets: [{ network: 198.18.0.0/24 }]\ndhcp: { enabled: false }\ntftp: { enabled: false }\n',
  });
  const [a, b, c] = h.heads as [HeadProc, HeadProc, HeadProc];
  const admin = h.lab.clients[0]!;
  t.equal(h.api(admin, a, 'POST', '/api/v1/hosts', { name: 'nas', ip: '198.18.0.70' }).status, 201, 'a host added on head A');
  for (const head of [b, c]) {
    const end = Date.now() + 20_000;
    let answer = '';
    while (!answer && Date.now() < end) {
      answer = h.lab.run(admin.ns, 'dig', [`@${head.address}`, '+short', '+tries=1', '+time=2', 'nas.lab.test']).stdout.trim();
      if (!answer) await new Promise((r) => setTimeout(r, 300));
    }
    t.equal(answer, '198.18.0.70', `${head.name} answers it: the members replicate over TLS`);
  }

  const peer = `${b.address}:52380`;
  const curl = (...args: string[]) => h.lab.run(admin.ns, 'curl', ['-sS', '--http1.1', '--max-time', '5', ...args]);
  t.not(curl(`http://${peer}/version`).code, 0, 'plain HTTP to a peer port gets nothing');
  t.not(curl('--cacert', `${certs}/ca.crt`, `https://${peer}/version`).code, 0, 'TLS without a client certificate is refused');
  t.not(curl('--cacert', `${certs}/ca.crt`, '--cert', `${certs}/stranger.crt`, '--key', `${certs}/stranger.key`, `https://${peer}/version`).code, 0,
    'a client certificate another CA signed is refused');
  // etcd also holds a peer's certificate against its address (IP SANs): head A's is taken from head A only.
  const withA = ['--cacert', `${certs}/ca.crt`, '--cert', `${certs}/ha.crt`, '--key', `${certs}/ha.key`, `https://${peer}/version`];
  const ok = h.lab.run(a.host.ns, 'curl', ['-sS', '--http1.1', '--max-time', '5', ...withA]);
  t.match(ok.stdout, /etcdserver/, `head A's certificate is taken from head A: ${ok.stdout.trim()}${ok.stderr.trim()}`);
  t.not(curl(...withA).code, 0, 'and refused from another address');

  const member = h.lab.run(b.host.ns, 'pgrep', ['-a', '-x', 'etcd']).stdout;
  for (const flag of [`--peer-trusted-ca-file ${certs}/ca.crt`, `--peer-cert-file ${certs}/hb.crt`, `--peer-key-file ${certs}/hb.key`, '--peer-client-cert-auth', `--listen-peer-urls https://${b.address}:52380`]) {
    t.ok(member.includes(flag), `head B's member runs with ${flag}`);
  }
  t.notOk(readFileSync(b.configFile, 'utf8').includes('ha.key'), 'each head\'s file names its own key only');
});
