/**
 * The built native helpers export exactly the functions src/net/native.ts
 * declares: a function renamed, added or dropped in native/*.c without its
 * declaration (or the other way round) fails here, not at the first packet.
 * Own property names, not Object.keys: napi_define_properties with
 * napi_default defines them non-enumerable.
 */
import t from 'tap';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { NATIVE_BUILD_DIR, NATIVE_EXPORTS } from '../../src/net/native.ts';

const require = createRequire(import.meta.url);
const built = readdirSync(NATIVE_BUILD_DIR).filter((f) => f.endsWith('.node')).map((f) => path.basename(f, '.node')).sort();

t.same(built, Object.keys(NATIVE_EXPORTS).sort(), 'one declaration for every helper in native/build, and every declared helper is built');

for (const name of built) {
  t.test(name, async (t) => {
    const helper = require(path.join(NATIVE_BUILD_DIR, `${name}.node`)) as Record<string, unknown>;
    const declared = NATIVE_EXPORTS[name as keyof typeof NATIVE_EXPORTS];
    t.ok(declared, `${name} is declared in src/net/native.ts`);
    if (!declared) return;
    t.same(Object.getOwnPropertyNames(helper).sort(), Object.keys(declared).sort(), 'exported names match the declaration');
    for (const fn of Object.keys(declared)) t.equal(typeof helper[fn], 'function', `${fn} is a function`);
  });
}
