/**
 * `bootherd lab up --heads 3` driven as a person drives it, through the CLI:
 * three heads answer (DNS, HTTP, status naming all three alive); `lab
 * kill-head 2` leaves the other two answering and status showing head 2
 * gone; `lab partition-head 3` makes writes through head 3's API fail with
 * 503 naming etcd while heads 1 and 2 keep taking them; `--heal` and head 3
 * catches up (a node added on head 1 meanwhile resolves on head 3); `lab
 * down` removes every namespace.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { namespaceExists } from '../../src/lab/netns.ts';
import { readLab, serverRunning, type LabHeadState, type LabState } from '../../src/lab/running.ts';
import { bootherd } from '../helpers/lab-vm.ts';
import { uniquePrefix } from '../helpers/lab-server.ts';

type Status = { services: { heads: { heads: Array<{ name: string; alive: boolean }> } } };
type LabStatusJson = { up: boolean; servers: Record<string, Status | null> };

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

t.test('lab up --heads 3, kill-head, partition-head, heal, down', async (t) => {
  const name = uniquePrefix('lh');
  t.teardown(() => bootherd(['lab', 'down', '--name', name], 60_000));
  const up = await bootherd(['lab', 'up', '--name', name, '--heads', '3', '--nodes', '2'], 10 * 60_000);
  t.equal(up.code, 0, `lab up --heads 3 (${up.stderr.trim().split('\n').slice(-3).join(' | ')})`);
  const state = readLab(name) as LabState;
  t.equal(state.heads.length, 3, 'the state file has three heads');
  const [h1, h2, h3] = state.heads as [LabHeadState, LabHeadState, LabHeadState];
  t.same(state.heads.map((h) => h.address), ['198.18.0.1', '198.18.0.2', '198.18.0.3'], 'at 198.18.0.1-3');
  t.ok(state.heads.every((h) => namespaceExists(h.ns)), 'each in its own namespace');

  // Asked from head 1's namespace: the lab has no other addressed host.
  const run = (cmd: string, args: string[]) => spawnSync('ip', ['netns', 'exec', h1.ns, cmd, ...args], { encoding: 'utf8', timeout: 30_000 });
  const dig = (head: LabHeadState, qname: string) => run('dig', [`@${head.address}`, '+short', '+tries=1', '+time=2', qname]).stdout.trim();
  const api = (head: LabHeadState, method: string, route: string, body?: unknown) => {
    const token = readFileSync(path.join(head.stateDir, 'api-token'), 'utf8').trim();
    const args = ['-sS', '--max-time', '20', '-o', '-', '-w', '\n%{http_code}', '-X', method, '-H', `authorization: Bearer ${token}`];
    if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', JSON.stringify(body));
    const out = run('curl', [...args, `http://${head.address}${route}`]).stdout;
    const cut = out.lastIndexOf('\n');
    return { status: Number(out.slice(cut + 1)) || 0, body: out.slice(0, Math.max(cut, 0)) };
  };
  const labStatus = async () => {
    const r = await bootherd(['lab', 'status', '--name', name, '--json'], 90_000);
    return { code: r.code, json: JSON.parse(r.stdout) as LabStatusJson };
  };
  const alive = (s: Status | null | undefined) => Object.fromEntries((s?.services.heads.heads ?? []).map((x) => [x.name, x.alive]));

  for (const head of state.heads) {
    t.equal(dig(head, 'n001.lab.test'), '198.18.0.11', `${head.name}: DNS answers n001`);
    t.equal(api(head, 'GET', '/api/v1/status').status, 200, `${head.name}: HTTP API answers`);
  }
  const all = await until('every head to see all three alive', async () => {
    const s = await labStatus();
    return s.code === 0 && state.heads.every((h) => Object.values(alive(s.json.servers[h.name])).filter(Boolean).length === 3) ? s : undefined;
  });
  t.same(alive(all.json.servers[h1.name]), { head1: true, head2: true, head3: true }, 'lab status: each head names three heads alive');

  const kill = await bootherd(['lab', 'kill-head', '--name', name, '2'], 60_000);
  t.equal(kill.code, 0, 'lab kill-head 2');
  t.match(kill.stdout, /killed bootherd head2/, 'it says what it killed');
  t.notOk(serverRunning(h2), 'head 2\'s bootherd is gone');
  for (const head of [h1, h3]) t.equal(dig(head, 'n002.lab.test'), '198.18.0.12', `${head.name} still answers DNS`);
  const gone = await until('heads 1 and 3 to see head 2 gone', async () => {
    const s = await labStatus();
    return alive(s.json.servers[h1.name])['head2'] === false && alive(s.json.servers[h3.name])['head2'] === false ? s : undefined;
  });
  t.not(gone.code, 0, 'lab status exits 1 with a head down');
  t.equal(gone.json.servers[h2.name], undefined, 'and has no view from head 2');
  t.equal(api(h1, 'POST', '/api/v1/hosts', { name: 'two-of-three', ip: '198.18.0.71' }).status, 201, 'two of three heads are a quorum: head 1 takes writes');

  const restart = await bootherd(['lab', 'kill-head', '--name', name, '2', '--restart'], 120_000);
  t.equal(restart.code, 0, `lab kill-head 2 --restart (${restart.stderr.trim()})`);
  t.equal(await until('head 2 to answer the host added while it was down', () => dig(h2, 'two-of-three.lab.test') || undefined), '198.18.0.71', 'restarted head 2 caught up');

  const part = await bootherd(['lab', 'partition-head', '--name', name, '3'], 60_000);
  t.equal(part.code, 0, `lab partition-head 3 (${part.stderr.trim()})`);
  const refused = await until('a write through head 3 to be refused', () => {
    const r = api(h3, 'POST', '/api/v1/hosts', { name: 'on-three', ip: '198.18.0.72' });
    return r.status === 201 ? undefined : r;
  });
  t.equal(refused.status, 503, 'a write through head 3 gets 503');
  t.match(refused.body, /etcd/, 'naming etcd');
  t.equal(dig(h3, 'n001.lab.test'), '198.18.0.11', 'head 3 still answers DNS from its cache');
  // A head's client may have moved to head 3's client port (it moves on after a failure, e.g. the leader
  // lost when head 3 was cut off): that one call fails, and the next goes to the next endpoint.
  const writeOn = async (head: LabHeadState, route: string, body: unknown) => {
    const refused: string[] = [];
    const r = await until(`${head.name} to take a write during the partition`, () => {
      const r = api(head, 'POST', route, body);
      if (r.status !== 201) refused.push(`${r.status} ${r.body.slice(0, 200)}`);
      return r.status === 201 ? r : undefined;
    });
    t.ok(refused.length <= 1, `${head.name} takes a write during the partition (${refused.length} refused first${refused.length ? `: ${refused[0]}` : ''})`);
    return r;
  };
  await writeOn(h1, '/api/v1/nodes', { name: 'n050', macs: ['52:54:00:00:00:50'], ip: '198.18.0.60' });
  await writeOn(h2, '/api/v1/hosts', { name: 'during', ip: '198.18.0.73' });
  t.equal(await until('head 2 to answer n050', () => dig(h2, 'n050.lab.test') || undefined), '198.18.0.60', 'head 2 sees head 1\'s node');
  t.equal(dig(h3, 'n050.lab.test'), '', 'head 3 does not know n050 while partitioned');

  const heal = await bootherd(['lab', 'partition-head', '--name', name, '3', '--heal'], 60_000);
  t.equal(heal.code, 0, 'lab partition-head 3 --heal');
  t.equal(execFileSync('ip', ['netns', 'exec', h3.ns, 'iptables', '-S'], { encoding: 'utf8' }).includes('BOOTHERD-PARTITION'), false, 'the rules are gone');
  t.equal(await until('head 3 to answer n050 after the heal', () => dig(h3, 'n050.lab.test') || undefined, 60_000), '198.18.0.60', 'head 3 caught up: n050 resolves on it');
  t.equal(await until('a write through head 3 to be taken again', () => {
    const r = api(h3, 'POST', '/api/v1/hosts', { name: 'after', ip: '198.18.0.74' });
    return r.status === 201 ? r.status : undefined;
  }, 60_000), 201, 'and writes through head 3 work again');

  const last = readLab(name) as LabState;
  const down = await bootherd(['lab', 'down', '--name', name], 60_000);
  t.equal(down.code, 0, 'lab down');
  t.same(state.lab.namespaces.filter(namespaceExists), [], 'every namespace of the lab is gone');
  t.notOk(last.heads.some(serverRunning), 'and every head\'s bootherd');
  t.equal(readLab(name), undefined, 'and its state file');
});
