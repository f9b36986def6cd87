// Node project setup: migrate once, then every test target starts from a copy (of a PGlite
// folder, or of a Postgres template database when TEST_DATABASE_URL is set).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { openNodePostgres } from '../../src/adapters/db-node-postgres';
import { openPglite } from '../../src/adapters/db-pglite';
import { migrate } from '../../src/db/migrate';
import { TEST_PGLITE_SETTINGS } from '../support/types';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PGlite data folder, migrated: each test target's database starts as a copy of it. */
    pgliteMigrated: string;
    /** A PGlite data folder after initdb, before any migration (test/support/data-dirs.ts copies it). */
    pgliteInitialised: string;
    pgTemplate: string;
    pgBase: string;
    runId: string;
  }
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export default async function setup(project: TestProject) {
  // Tests that run `npm start` or the `orbital` command run the built code (dist/): build it from this tree.
  execFileSync(process.execPath, ['scripts/build-server.mjs'], { stdio: 'inherit' });
  const runId = `orbital_t${randomBytes(4).toString('hex')}`;
  project.provide('runId', runId);
  const base = process.env.TEST_DATABASE_URL;
  if (base) {
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    const template = `${runId}_tpl`;
    await admin.query(`create database ${template}`);
    const handle = openNodePostgres(withDatabase(base, template), 2);
    await migrate(handle.db);
    await handle.close();
    project.provide('pgTemplate', template);
    project.provide('pgBase', base);
    project.provide('pgliteMigrated', '');
    project.provide('pgliteInitialised', '');
    return async () => {
      const { rows } = await admin.query<{ datname: string }>(`select datname from pg_database where datname like $1`, [`${runId}%`]);
      for (const { datname } of rows) await admin.query(`drop database if exists ${datname} with (force)`);
      await admin.end();
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'orbital-pglite-'));
  // One initdb for the whole run: kept as it is for processes' data dirs, and migrated for the
  // in-process targets. Copying a folder and opening it costs less than loading a dump.
  const initialised = join(dir, 'initialised');
  const migrated = join(dir, 'migrated');
  // Written into its postgresql.conf, so the servers and commands tests start on copies of it boot
  // with the tests' smaller buffer cache too (data-dir.test.ts and startup.test.ts keep the default).
  await (await openPglite({ dataDir: initialised, settings: TEST_PGLITE_SETTINGS })).close();
  cpSync(initialised, migrated, { recursive: true });
  const handle = await openPglite({ dataDir: migrated });
  await migrate(handle.db);
  await handle.close();
  project.provide('pgliteMigrated', migrated);
  project.provide('pgliteInitialised', initialised);
  project.provide('pgTemplate', '');
  project.provide('pgBase', '');
  return () => rmSync(dir, { recursive: true, force: true });
}
