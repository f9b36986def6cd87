// One migration runner for every driver (PGlite, node-postgres, Neon inside workerd). Compatible
// with drizzle's migrator: same table, same hashes. An advisory lock lets many processes start at once.
import { sql, type SQL } from 'drizzle-orm';
import type { Db } from '../deps';
import { migrations as bundled } from './migrations.generated';

export interface Migration {
  tag: string;
  when: number;
  hash: string;
  statements: string[];
}

const LOCK_KEY = 727_001; // arbitrary, shared by every orbital process

/** Runs one statement inside the caller's transaction and returns its rows. */
export type Exec = (query: SQL) => Promise<Array<Record<string, unknown>>>;

export async function migrate(db: Db, migrations: Migration[] = bundled): Promise<number> {
  return db.transaction((tx) => applyMigrations(async (query) => (await tx.execute(query) as unknown as { rows: Array<Record<string, unknown>> }).rows, migrations));
}

/**
 * The migrations not yet applied, inside the caller's transaction (a restore applies the archive's
 * level, its rows and the newer migrations as one transaction).
 */
export async function applyMigrations(exec: Exec, migrations: Migration[] = bundled): Promise<number> {
  await exec(sql`select pg_advisory_xact_lock(${LOCK_KEY})`);
  await exec(sql`create schema if not exists drizzle`);
  await exec(sql`create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`);
  const rows = await exec(sql`select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`);
  const last = rows[0] ? Number(rows[0].created_at) : -1;
  let applied = 0;
  for (const m of migrations) {
    if (m.when <= last) continue;
    for (const statement of m.statements) if (statement.trim()) await exec(sql.raw(statement));
    await exec(sql`insert into drizzle.__drizzle_migrations (hash, created_at) values (${m.hash}, ${m.when})`);
    applied++;
  }
  return applied;
}

/** The hashes of the applied migrations, oldest first. */
export async function appliedMigrations(exec: Exec): Promise<string[]> {
  const [exists] = await exec(sql`select to_regclass('drizzle.__drizzle_migrations') is not null as present`);
  if (!exists?.present) return [];
  return (await exec(sql`select hash from drizzle.__drizzle_migrations order by created_at, id`)).map((r) => String(r.hash));
}

export { bundled as bundledMigrations };
