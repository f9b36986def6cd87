// One migration runner for every driver (PGlite, node-postgres, Neon inside workerd). Compatible
// with drizzle's migrator: same table, same hashes. An advisory lock lets many processes start at once.
import { sql } from 'drizzle-orm';
import type { Db } from '../deps';
import { migrations as bundled } from './migrations.generated';

export interface Migration {
  tag: string;
  when: number;
  hash: string;
  statements: string[];
}

const LOCK_KEY = 727_001; // arbitrary, shared by every orbital process

export async function migrate(db: Db, migrations: Migration[] = bundled): Promise<number> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${LOCK_KEY})`);
    await tx.execute(sql`create schema if not exists drizzle`);
    await tx.execute(sql`create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`);
    const result = await tx.execute(sql`select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`);
    const rows = (result as unknown as { rows: Array<{ created_at: string | number }> }).rows;
    const last = rows[0] ? Number(rows[0].created_at) : -1;
    let applied = 0;
    for (const m of migrations) {
      if (m.when <= last) continue;
      for (const statement of m.statements) if (statement.trim()) await tx.execute(sql.raw(statement));
      await tx.execute(sql`insert into drizzle.__drizzle_migrations (hash, created_at) values (${m.hash}, ${m.when})`);
      applied++;
    }
    return applied;
  });
}
