/**
 * The native helpers in native/ (C, built by scripts/setup.sh into
 * native/build): loaded on first use, so a tool that never opens a socket
 * does not need them built.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BUILD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../native/build');
const loaded = new Map<string, unknown>();

/** The helper native/<name>.c as built; `what` names it in the error when it is not built. */
export function nativeHelper<T>(name: string, what: string): T {
  let helper = loaded.get(name);
  if (!helper) {
    const file = path.join(BUILD_DIR, `${name}.node`);
    if (!existsSync(file)) throw new Error(`the native ${what} is not built (${file}); run "npm run setup"`);
    helper = createRequire(import.meta.url)(file);
    loaded.set(name, helper);
  }
  return helper as T;
}
