// Statements built once (src/db/statement.ts) give what the query builder gives: the same rows,
// decoded by the same columns (timestamps, bytea as base64, bigint as number, jsonb, nulls), from
// the same encoded values, on the pool and inside a transaction. On PGlite they run through
// drizzle's prepared query; on node-postgres (TEST_DATABASE_URL) straight on pg's client.
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { bigint, boolean, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPglite } from '../../src/adapters/db-pglite';
import { bytea } from '../../src/db/schema';
import { statement } from '../../src/db/statement';
import type { Db, Executor } from '../../src/deps';

const table = pgTable(`statement_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`, {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
  blob: bytea('blob'),
  count: bigint('count', { mode: 'number' }).notNull(),
  small: integer('small'),
  flag: boolean('flag').notNull(),
  data: jsonb('data'),
});

const selection = { id: table.id, name: table.name, at: table.at, blob: table.blob, count: table.count, small: table.small, flag: table.flag, data: table.data };
const byName = statement<typeof table.$inferSelect>((db) => db.select(selection).from(table).where(eq(table.name, sql.placeholder('name'))), selection);
const insert = statement<{ id: string; at: Date; blob: string | null }>(
  (db) =>
    db
      .insert(table)
      .values({
        name: sql.placeholder('name'),
        at: sql.placeholder('at'),
        blob: sql.placeholder('blob'),
        count: sql.placeholder('count'),
        small: sql.placeholder('small'),
        flag: sql.placeholder('flag'),
        data: sql.placeholder('data'),
      })
      .returning({ id: table.id, at: table.at, blob: table.blob }),
  { id: table.id, at: table.at, blob: table.blob },
);
/** Without a selection: the driver's rows as they come. */
const raw = statement<{ name: string; n: number }>((db) => db.execute(sql`select ${table.name} as name, 7::int as n from ${table} where ${table.name} = ${sql.placeholder('name')}`));

const targets: Array<[string, () => Promise<{ db: Db; close(): Promise<void> }>]> = [
  ['PGlite', async () => openPglite()],
];
const postgres = process.env.TEST_DATABASE_URL;
if (postgres) {
  targets.push([
    'node-postgres',
    async () => {
      const pool = new pg.Pool({ connectionString: postgres, max: 2 });
      return { db: drizzle({ client: pool }) as unknown as Db, close: () => pool.end() };
    },
  ]);
} else {
  console.warn('statement: the node-postgres case skipped (set TEST_DATABASE_URL)');
}

describe.each(targets)('statements built once, on %s', (_name, open) => {
  let handle: { db: Db; close(): Promise<void> };
  beforeAll(async () => {
    handle = await open();
    await handle.db.execute(
      sql.raw(`create table "${table[Symbol.for('drizzle:Name') as never]}" (id uuid primary key default gen_random_uuid(), name text not null, at timestamptz not null,
        blob bytea, count bigint not null, small integer, flag boolean not null, data jsonb)`),
    );
  });
  afterAll(async () => {
    await handle.db.execute(sql.raw(`drop table if exists "${table[Symbol.for('drizzle:Name') as never]}"`));
    await handle.close();
  });

  const values = { name: 'first', at: new Date('2026-12-06T08:30:01.234Z'), blob: 'AAEC/w==', count: 2 ** 40, small: null, flag: true, data: { a: [1, 'two'], b: null } };

  it('reads and writes what the query builder does, on the pool and in a transaction', async () => {
    const [made] = await insert.run(handle.db, values);
    expect(made).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), at: values.at, blob: values.blob });
    await handle.db.transaction(async (tx: Executor) => {
      await insert.run(tx, { ...values, name: 'second', blob: '', small: -3, flag: false, data: null });
      await tx.insert(table).values({ ...values, name: 'third', blob: null });
      for (const name of ['first', 'second', 'third']) {
        const built = await tx.select(selection).from(table).where(eq(table.name, name));
        expect(await byName.run(tx, { name })).toEqual(built);
      }
    });
    const built = await handle.db.select(selection).from(table).where(eq(table.name, 'first'));
    expect(built).toEqual([{ id: made!.id, ...values }]);
    expect(await byName.run(handle.db, { name: 'first' })).toEqual(built);
    expect(await byName.run(handle.db, { name: 'nobody' })).toEqual([]);
  });

  it('gives the driver rows as they are without a selection', async () => {
    expect(await raw.run(handle.db, { name: 'first' })).toEqual([{ name: 'first', n: 7 }]);
  });

  it('refuses a run missing a value rather than sending null', async () => {
    await expect(byName.run(handle.db, {})).rejects.toThrow('No value for placeholder "name"');
  });
});
