/**
 * Tests that need a Debian program (etcd, curl, openssl...) skip, saying
 * which package brings it, where it is missing: `npm run test:unit` must run
 * on a machine that has only Node and a C compiler (no apt, no root).
 */
import { spawnSync } from 'node:child_process';

/** The Debian package of each program the unit tests run. */
const PACKAGES: Readonly<Record<string, string>> = {
  etcd: 'etcd-server', etcdctl: 'etcd-client', curl: 'curl', openssl: 'openssl', python3: 'python3',
};

/** false when every program is on the PATH, else the skip reason naming the missing ones and their packages. */
export function missingTools(...programs: readonly string[]): string | false {
  const missing = programs.filter((p) => spawnSync('sh', ['-c', `command -v ${p}`], { stdio: 'ignore' }).status !== 0);
  if (!missing.length) return false;
  return `SKIPPED: needs ${missing.map((p) => `${p} (Debian's ${PACKAGES[p] ?? p})`).join(', ')}; sudo npm run setup installs them`;
}

/**
 * A stand-in for systemd's end of sd_notify(3): an AF_UNIX datagram socket
 * (Node has none, so python3 holds it) whose every datagram arrives as one
 * string, in order. `socket` is what NOTIFY_SOCKET would say.
 */
export async function notifyReceiver(socket: string): Promise<{ readonly messages: string[]; next(): Promise<string>; close(): void }> {
  const { spawn } = await import('node:child_process');
  const py = 'import json,socket,sys\np=sys.argv[1]\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind("\\0"+p[1:] if p[0]=="@" else p)\nprint("bound",flush=True)\nwhile True: print(json.dumps(s.recv(4096).decode()),flush=True)';
  const child = spawn('python3', ['-c', py, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  let taken = 0;
  let bound!: () => void;
  const ready = new Promise<void>((r) => { bound = r; });
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i; (i = buf.indexOf('\n')) >= 0;) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === 'bound') { bound(); continue; }
      messages.push(JSON.parse(line) as string);
      waiters.splice(0).forEach((w) => w());
    }
  });
  await ready;
  return {
    messages,
    async next() {
      while (taken >= messages.length) await new Promise<void>((r) => waiters.push(r));
      return messages[taken++]!;
    },
    close: () => { child.kill(); },
  };
}
