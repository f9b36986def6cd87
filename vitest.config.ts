// One suite, several targets: `node` (PGlite, or real Postgres with TEST_DATABASE_URL) and
// `workerd` (the Worker, its Durable Object, R2 and the Neon driver, through Cloudflare's plugin).
// API tests in test/api import '#target' and run on both.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import type { WorkerdDatabase } from './test/setup/global-workerd';
import { useMemoryScratch } from './test/setup/scratch-dir';

useMemoryScratch();

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
// Node test files spend most of their time waiting (sockets, child processes, the database), so
// more run at once than there are cores; vitest's default (cores − 1) ran them one by one here.
const nodeWorkers = Number(process.env.TEST_WORKERS) || Math.max(3, availableParallelism() + 1);
// workerd files mostly wait on their database and sockets: two runners keep a core busy.
const workerdWorkers = Number(process.env.TEST_WORKERD_WORKERS) || 2;
const workerdConditions = ['workerd', 'worker', 'module', 'browser'];

export default defineConfig({
  // pg's CommonJS `require('pg-cloudflare')` inside workerd resolves with the root's conditions,
  // not the project's: without these it gets the empty build (`CloudflareSocket is not a constructor`).
  resolve: { conditions: workerdConditions },
  ssr: { resolve: { conditions: workerdConditions } },
  test: {
    projects: [
      {
        resolve: { alias: { '#target': here('./test/support/node-target.ts') } },
        test: {
          name: 'node',
          include: ['test/api/**/*.test.ts', 'test/node/**/*.test.ts'],
          globalSetup: ['test/setup/global-node.ts'],
          maxWorkers: nodeWorkers,
          // Files in one worker share loaded modules (the app, drizzle, zod …): each file used to
          // import them anew. Every file still builds its own server and database.
          isolate: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        plugins: [
          // Called as each runner starts: a database of its own (test/setup/global-workerd.ts).
          cloudflareTest(async ({ inject }) => {
            const res = await fetch(inject('workerdDatabases'), { method: 'POST' });
            if (!res.ok) throw new Error(`no database for a workerd runner: ${await res.text()}`);
            const database = (await res.json()) as WorkerdDatabase;
            return {
              wrangler: { configPath: './wrangler.toml' },
              miniflare: {
                bindings: {
                  DATABASE_URL: database.databaseUrl,
                  DB_WS_PROXY: database.wsProxy,
                  JWT_SECRET: 'orbital-test-secret-0123456789-abcdefghijklmnop',
                  RATE_LIMIT: 'off',
                  LOG_LEVEL: 'silent',
                  ROUND_TRIP_METER: database.meterUrl,
                },
                // The Hyperdrive path's binding, under another name: tests opt in (test/workerd/database-paths.test.ts).
                hyperdrives: { TEST_HYPERDRIVE: database.hyperdriveUrl },
                // Miniflare's local Analytics Engine dataset (it drops writes), under another name:
                // test/workerd/analytics-engine.test.ts binds it as ANALYTICS through a tap.
                analyticsEngineDatasets: { TEST_ANALYTICS: { dataset: 'orbital_test' } },
              },
            };
          }),
        ],
        resolve: { alias: { '#target': here('./test/support/workerd-target.ts') }, conditions: workerdConditions },
        ssr: { resolve: { conditions: workerdConditions } },
        test: {
          name: 'workerd',
          include: ['test/api/**/*.test.ts', 'test/workerd/**/*.test.ts'],
          globalSetup: ['test/setup/global-workerd.ts'],
          // A runner takes several files in turn (modules loaded once) on a database of its own, so
          // global steps (cleanup, budgets) cannot reach another runner's files. Its own group: in
          // one `vitest run` with the node project, after it (npm test runs the two side by side).
          maxWorkers: workerdWorkers,
          isolate: false,
          sequence: { groupOrder: 1 },
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
