#!/usr/bin/env node
// The `orbital` command: runs the CLI built ahead of time (src/cli/orbital.ts → dist/orbital.js by
// `npm run build:server`, which `npm install` runs as `prepare`). No TypeScript loader at run time.
let cli;
try {
  cli = await import('../dist/orbital.js');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/orbital.js')) throw err;
  process.stderr.write('orbital: the CLI is not built yet; run `npm run build:server` (or `npm install`) in the project folder\n');
  process.exit(1);
}
await cli.run();
