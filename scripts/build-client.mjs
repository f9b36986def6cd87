// Builds the package's `./client` export: src/client/portable.ts bundled to one ESM file (no
// dependencies; platform "neutral", so an import of a Node module fails the build) and its .d.ts.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const out = 'dist/client';
rmSync(out, { recursive: true, force: true });

await build({
  entryPoints: ['src/client/portable.ts'],
  outfile: join(out, 'index.js'),
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});

// Declarations (tsconfig.client.json: no Node types, so a Node API in the client fails here too).
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.client.json'], { stdio: 'inherit' });
// ESM resolution in consumers (moduleResolution node16/nodenext) wants extensions on relative imports.
const types = join(out, 'types');
for (const entry of readdirSync(types, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
  const path = join(entry.parentPath ?? entry.path, entry.name);
  const text = readFileSync(path, 'utf8').replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+?)(?<!\.js)\2/g, '$1$2$3.js$2');
  writeFileSync(path, text);
}
