/**
 * A second process that opens an embedded store and holds it: prints "open <pid>"
 * once it has the lock, then waits to be killed (tests of the state directory lock).
 */
import { EmbeddedStore } from '../../src/store/embedded.ts';

const store = new EmbeddedStore(process.argv[2]!);
await store.open();
process.stdout.write(`open ${process.pid}\n`);
setInterval(() => undefined, 60_000);
