#!/usr/bin/env node
// The `orbital` command: runs the TypeScript CLI (src/cli/orbital.ts) through tsx, in this process.
import { register } from 'tsx/esm/api';

register();
const { run } = await import('../src/cli/orbital.ts');
await run();
