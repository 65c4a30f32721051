/**
 * Tests that need a Debian program (etcd, curl, openssl...) skip, saying
 * which package brings it, where it is missing: `npm run test:unit` must run
 * on a machine that has only Node and a C compiler (no apt, no root).
 */
import { spawnSync } from 'node:child_process';

/** The Debian package of each program the unit tests run. */
const PACKAGES: Readonly<Record<string, string>> = {
  etcd: 'etcd-server', etcdctl: 'etcd-client', curl: 'curl', openssl: 'openssl',
};

/** false when every program is on the PATH, else the skip reason naming the missing ones and their packages. */
export function missingTools(...programs: readonly string[]): string | false {
  const missing = programs.filter((p) => spawnSync('sh', ['-c', `command -v ${p}`], { stdio: 'ignore' }).status !== 0);
  if (!missing.length) return false;
  return `SKIPPED: needs ${missing.map((p) => `${p} (Debian's ${PACKAGES[p] ?? p})`).join(', ')}; sudo npm run setup installs them`;
}
