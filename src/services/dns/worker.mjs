// Entry of a DNS worker thread. A worker starts without its parent's module
// loader, so it registers tsx itself before loading the TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
