#!/usr/bin/env node
// bootherd is written in TypeScript and run through tsx's loader: no build step,
// the code that runs is the code in src/.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
