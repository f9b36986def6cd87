// `npm run build:server`: compiles the Node runtime code (server, `orbital` CLI, db:migrate,
// cleanup and admin) ahead of time into dist/, so nothing loads a TypeScript compiler at run time.
// Pure-JavaScript packages are bundled in: Node's loader resolving and reading their hundreds of
// files took ~0.3 s of every start (server and CLI). Those that read files beside their own code
// (PGlite's and argon2's WebAssembly), or have native or optional parts, stay external and load
// from node_modules. Code shared by the entries goes into chunks.
// Plain JavaScript so it runs before anything is built; `npm start`, `db:migrate` and `cleanup` run
// it first. dist/ is not emptied: a server running from it may still load its lazy chunk (PGlite).
// Files are replaced whole (written aside, then renamed) and only when they changed, chunks before
// the entries that import them: a process starting from dist/ while another build runs (`npm pack`,
// `npm install -g .` in the tests) read a half-written chunk ("openPglite is not a function").
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** Loaded from node_modules at run time: they find their own files relative to their modules, or carry native/optional parts. */
const EXTERNAL = ['@electric-sql/pglite', '@phi-ag/argon2', 'pg', 'pg-native', 'ws', 'bufferutil', 'utf-8-validate', '@neondatabase/serverless'];

/**
 * What the last build read and wrote (dist/.build-inputs.json): `npm start` builds first every
 * time, and bundling the packages made a build take ~0.85 s, more than what it saves the start. A
 * build is skipped (~40 ms) when its inputs hash as they did (every file esbuild read, the
 * package.json of each package they come from, this script, package.json, tsconfig.json and
 * esbuild's version) and its outputs hash as it wrote them: any other writer of dist/ (an older
 * commit's build script, a hand edit) makes the next run build.
 */
const RECORD = 'dist/.build-inputs.json';
const hashOf = (paths) => {
  const hash = createHash('sha256');
  for (const path of paths) hash.update(path).update(readFileSync(path));
  return hash.digest('hex');
};
const self = relative(process.cwd(), fileURLToPath(import.meta.url));

const started = performance.now();
const done = (what) => process.argv.includes('--verbose') && console.log(`dist/ ${what} in ${Math.round(performance.now() - started)} ms`);
try {
  const last = JSON.parse(readFileSync(RECORD, 'utf8'));
  if (hashOf(last.outputs) === last.written && hashOf(last.inputs) === last.hash) {
    done('up to date');
    process.exit(0);
  }
} catch {
  // No record, a file gone, or a record from before: build.
}
// An input saved after this (while esbuild runs) may not be what it read.
const began = Date.now();
const { outputFiles, metafile } = await build({
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
  external: EXTERNAL.flatMap((name) => [name, `${name}/*`]),
  // Bundled CommonJS packages (prom-client, pg's helpers) require Node's own modules.
  banner: { js: "import { createRequire as __orbitalRequire } from 'node:module'; const require = __orbitalRequire(import.meta.url);" },
  sourcemap: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
  write: false,
  metafile: true,
});
// What a build killed between writing and renaming left (not what one running beside writes now).
const leftovers = existsSync('dist') ? readdirSync('dist', { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.tmp')) : [];
for (const entry of leftovers) {
  const path = join(entry.parentPath, entry.name);
  if (Date.now() - statSync(path, { throwIfNoEntry: false })?.mtimeMs > 60_000) rmSync(path, { force: true });
}
// The record goes before the outputs change: a build stopped halfway must not be taken as done.
rmSync(RECORD, { force: true });
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
// Also what shapes the output without being read as a module: the settings esbuild takes from
// package.json files (a package's `exports` picks the file) and tsconfig.json, and esbuild's version.
const read = Object.keys(metafile.inputs);
const manifests = read.filter((path) => path.includes('node_modules/')).map((path) => {
  const at = path.lastIndexOf('node_modules/') + 'node_modules/'.length;
  const parts = path.slice(at).split('/');
  return `${path.slice(0, at)}${parts.slice(0, parts[0].startsWith('@') ? 2 : 1).join('/')}/package.json`;
});
const inputs = [...new Set([self, 'package.json', 'tsconfig.json', 'node_modules/esbuild/package.json', ...manifests, ...read])].filter((path) => existsSync(path)).sort();
const outputs = outputFiles.map((f) => relative(process.cwd(), f.path)).sort();
// The mtime's clock is coarser than Date.now(): a margin, at the cost of a rebuild now and then.
if (inputs.some((path) => statSync(path).mtimeMs >= began - 50)) {
  done('built (an input changed while it ran: the next run builds again)');
} else {
  writeFileSync(`${RECORD}.${process.pid}.tmp`, JSON.stringify({ hash: hashOf(inputs), written: hashOf(outputs), inputs, outputs }));
  renameSync(`${RECORD}.${process.pid}.tmp`, RECORD);
  done('built');
}
