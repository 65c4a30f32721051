/**
 * `bootherd serve --user <name>` started as root: the server runs as <name>
 * with only the capabilities it needs, and a small root supervisor stays
 * behind whose one job, besides forwarding signals, is to run the iSCSI
 * target tools for it (docs/install.md says why each piece is needed).
 *
 * Node cannot change its user and keep capabilities itself, so the server is
 * a child started through util-linux's setpriv: new uid/gid and groups, the
 * capabilities below as inheritable and ambient (so they survive the exec of
 * an unprivileged node), and a bounding set of only those, so neither the
 * server nor anything it runs can ever get another one back.
 */
import { execFileSync, spawn } from 'node:child_process';
import { lchownSync, lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/load.ts';
import { BIN } from '../lab/running.ts';
import { logDirOf } from '../services/http/service.ts';
import { execRunner, ToolMissingError, type CommandResult, type Runner } from '../services/iscsi/backend.ts';

/**
 * What the server keeps. net_bind_service: DHCP 67, TFTP 69, DNS 53, NTP 123,
 * HTTP 80 and iSCSI's 3260 portal are below 1024 but the first. net_admin:
 * SO_RCVBUFFORCE/SO_SNDBUFFORCE, the socket buffers past net.core.rmem_max
 * that DHCP/DNS/TFTP bursts need (native/udp_batch.c). Not net_raw:
 * SO_BINDTODEVICE needs no capability since Linux 5.7 on an unbound socket.
 */
export const SERVE_CAPABILITIES = ['net_bind_service', 'net_admin'] as const;

/** The only programs the root supervisor runs for the server: the iSCSI backends' tools (tgtd and LIO take orders from root only). */
const RELAYED = new Set(['targetcli', 'tgtadm']);
/** Set in the server's environment when its supervisor runs the iSCSI tools for it. */
const RELAY_ENV = 'BOOTHERD_ISCSI_RELAY';

type RelayRequest = { readonly id: number; readonly file: string; readonly args: readonly string[] };
type RelayReply = { readonly id: number; readonly result?: CommandResult; readonly missing?: { tool: string; hint: string }; readonly refused?: string };

interface Account { readonly user: string; readonly uid: number; readonly gid: number }

function account(user: string): Account {
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, user], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim());
    return { user, uid: id('-u'), gid: id('-g') };
  } catch {
    throw new Error(`--user ${user}: no such user (the package's postinst creates the bootherd system user; else: adduser --system --group ${user})`);
  }
}

/** The directories the server writes, owned by its user (made if missing; a root-owned tree from an earlier root run is handed over). */
function handOver(config: Config, a: Account): void {
  for (const dir of [config.stateDir, logDirOf({ config })]) {
    mkdirSync(dir, { recursive: true });
    if (statSync(dir).uid === a.uid) continue;
    // lchown and lstat: a link in the tree is handed over itself, never what it points to.
    const walk = (p: string) => {
      lchownSync(p, a.uid, a.gid);
      if (lstatSync(p).isDirectory()) for (const e of readdirSync(p)) walk(path.join(p, e));
    };
    walk(dir);
  }
}

/**
 * Runs `serve` as `user` (see the file comment) and resolves with the
 * server's exit code once it ends. `serveArgs` are the serve options the
 * server gets, without --user.
 */
export async function superviseAs(user: string, config: Config, serveArgs: readonly string[]): Promise<number> {
  if (process.getuid?.() !== 0) throw new Error('--user needs root: bootherd binds its ports and then runs as that user (run it as root, or leave --user out)');
  const a = account(user);
  handOver(config, a);
  const caps = SERVE_CAPABILITIES.map((c) => `+${c}`).join(',');
  const child = spawn('setpriv', [
    `--reuid=${a.uid}`, `--regid=${a.gid}`, '--init-groups',
    `--inh-caps=-all,${caps}`, `--ambient-caps=-all,${caps}`, `--bounding-set=-all,${caps}`,
    '--', process.execPath, BIN, 'serve', ...serveArgs,
  ], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], env: { ...process.env, [RELAY_ENV]: '1', HOME: config.stateDir } });
  const run = execRunner({ targetcli: "Debian's targetcli-fb", tgtadm: "Debian's tgt" });
  child.on('message', (m: RelayRequest) => {
    const reply = (r: Omit<RelayReply, 'id'>) => { if (child.connected) child.send({ id: m.id, ...r } satisfies RelayReply); };
    if (!RELAYED.has(m.file) || !Array.isArray(m.args) || !m.args.every((x) => typeof x === 'string')) {
      reply({ refused: `the supervisor runs only ${[...RELAYED].join(' and ')}` });
      return;
    }
    run(m.file, m.args).then((result) => reply({ result }), (e: unknown) => {
      if (e instanceof ToolMissingError) reply({ missing: { tool: e.tool, hint: e.hint } });
      else reply({ refused: (e as Error).message });
    });
  });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  return new Promise((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`setpriv (util-linux) could not start the server: ${e.message}`)));
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Whether this process is the server a superviseAs started (its supervisor is the unit's main process then). */
export function underSupervisor(): boolean {
  return process.env[RELAY_ENV] === '1' && Boolean(process.send);
}

/** In a server started by superviseAs: the runner that has the supervisor run targetcli/tgtadm; undefined elsewhere. */
export function supervisorRunner(): Runner | undefined {
  if (!underSupervisor()) return undefined;
  let next = 0;
  const waiting = new Map<number, { resolve: (r: CommandResult) => void; reject: (e: Error) => void }>();
  process.on('message', (m: RelayReply) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (m.result) w.resolve(m.result);
    else if (m.missing) w.reject(new ToolMissingError(m.missing.tool, m.missing.hint));
    else w.reject(new Error(`supervisor: ${m.refused ?? 'no answer'}`));
  });
  // Only pending calls keep the channel referenced, so it never holds the server's exit.
  process.channel?.unref();
  return (file, args) => new Promise((resolve, reject) => {
    const id = ++next;
    waiting.set(id, {
      resolve: (r) => { if (!waiting.size) process.channel?.unref(); resolve(r); },
      reject: (e) => { if (!waiting.size) process.channel?.unref(); reject(e); },
    });
    process.channel?.ref();
    process.send!({ id, file, args: [...args] } satisfies RelayRequest);
  });
}
