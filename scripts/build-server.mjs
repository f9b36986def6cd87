// `npm run build:server`: compiles the Node runtime code (server, `orbital` CLI, db:migrate,
// cleanup and admin) ahead of time into dist/, so nothing loads a TypeScript compiler at run time.
// Packages stay external (loaded from node_modules); code shared by the entries goes into chunks.
// Plain JavaScript so it runs before anything is built; `npm start`, `db:migrate` and `cleanup` run
// it first. dist/ is not emptied: a server running from it may still load its lazy chunk (PGlite).
// Files are replaced whole (written aside, then renamed) and only when they changed, chunks before
// the entries that import them: a process starting from dist/ while another build runs (`npm pack`,
// `npm install -g .` in the tests) read a half-written chunk ("openPglite is not a function").
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';

const started = performance.now();
const { outputFiles } = await build({
  entryPoints: {
    server: 'src/runtime/server.ts',
    orbital: 'src/cli/orbital.ts',
    migrate: 'src/cli/migrate.ts',
    cleanup: 'src/cli/cleanup.ts',
    admin: 'src/cli/admin.ts',
    backup: 'src/cli/backup.ts',
    restore: 'src/cli/restore.ts',
  },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.10',
  packages: 'external',
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
  write: false,
});
// What a build killed between writing and renaming left (not what one running beside writes now).
const leftovers = existsSync('dist') ? readdirSync('dist', { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.tmp')) : [];
for (const entry of leftovers) {
  const path = join(entry.parentPath, entry.name);
  if (Date.now() - statSync(path, { throwIfNoEntry: false })?.mtimeMs > 60_000) rmSync(path, { force: true });
}
const isEntry = (path) => dirname(path) === resolve('dist') && path.endsWith('.js');
for (const file of [...outputFiles.filter((f) => !isEntry(f.path)), ...outputFiles.filter((f) => isEntry(f.path))]) {
  let current;
  try {
    current = readFileSync(file.path);
  } catch {}
  if (current?.equals(file.contents)) continue;
  mkdirSync(dirname(file.path), { recursive: true });
  const aside = `${file.path}.${process.pid}.tmp`;
  writeFileSync(aside, file.contents);
  renameSync(aside, file.path);
}
if (process.argv.includes('--verbose')) console.log(`dist/ built in ${Math.round(performance.now() - started)} ms`);
