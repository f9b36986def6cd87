// `npm run build:server`: compiles the Node runtime code (server, `orbital` CLI, db:migrate,
// cleanup and admin) ahead of time into dist/, so nothing loads a TypeScript compiler at run time.
// Packages stay external (loaded from node_modules); code shared by the entries goes into chunks.
// Plain JavaScript so it runs before anything is built; `npm start`, `db:migrate` and `cleanup` run
// it first. dist/ is not emptied: a server running from it may still load its lazy chunk (PGlite).
import { build } from 'esbuild';

const started = performance.now();
await build({
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
});
if (process.argv.includes('--verbose')) console.log(`dist/ built in ${Math.round(performance.now() - started)} ms`);
