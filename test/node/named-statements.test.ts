// Named statements on the server's own pool (src/db/named-statements.ts): a statement built once is
// prepared once per connection, and a database (or a pooler in transaction mode) that refuses its
// name turns them off without losing a statement: on the pool it runs again unnamed, in a
// transaction the transaction fails as unavailable (503) and its retry succeeds. The pooler is
// played by Postgres itself: DEALLOCATE ALL is what a connection moved to another backend sees.
// A migration that changes a column's type under a running server (a rolling deploy) is handled
// the same way, in the pool and in the server as `npm start` runs it. Commands name nothing. Needs
// Postgres (TEST_DATABASE_URL).
import { sql } from 'drizzle-orm';
import { PgDialect, integer, pgTable, text } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNodePostgres, type NodePgHandle } from '../../src/adapters/db-node-postgres';
import { NamedStatementRefused, statementName } from '../../src/db/named-statements';
import { statement } from '../../src/db/statement';
import { parseConfig } from '../../src/config';
import { databaseUnavailable } from '../../src/http/errors';
import { openDatabase } from '../../src/runtime/node';
import { b64, createOrbit, post, registerUser } from '../support/api';
import { freshDatabase, runSql, startServerProcess, targetOf } from '../support/server-process';
import { newDataDir } from '../support/data-dirs';

const url = process.env.TEST_DATABASE_URL;
if (!url) console.warn('named-statements: skipped (set TEST_DATABASE_URL)');

const table = pgTable(`named_statement_test_${process.pid}`, { id: integer('id').primaryKey(), name: text('name').notNull() });
const tableName = table[Symbol.for('drizzle:Name') as never] as string;
const build = () => sql`select ${table.name} as name from ${table} where ${table.id} = ${sql.placeholder('id')}`;
const nameById = statement<{ name: string }>((db) => db.execute(build()));
const statementText = new PgDialect().sqlToQuery(build()).sql;

describe.skipIf(!url)('named statements on the node-postgres pool', () => {
  let admin: NodePgHandle;
  beforeAll(async () => {
    admin = openNodePostgres(url!, 1);
    await admin.pool.query(`create table "${tableName}" (id integer primary key, name text not null)`);
    await admin.pool.query(`insert into "${tableName}" values (1, 'one'), (2, 'two')`);
  });
  afterAll(async () => {
    await admin.pool.query(`drop table if exists "${tableName}"`);
    await admin.close();
  });

  /** A pool of one connection, so what a statement leaves on it is what the next one finds; and the refusals it was told of. */
  async function withPool(test: (handle: NodePgHandle, refusals: Array<{ code?: string }>) => Promise<void>) {
    const refusals: Array<{ code?: string }> = [];
    const handle = openNodePostgres(url!, 1, { named: { refused: (err) => refusals.push(err as { code?: string }) } });
    try {
      await test(handle, refusals);
    } finally {
      await handle.close();
    }
  }
  const prepared = async (handle: NodePgHandle) => (await handle.pool.query<{ name: string; statement: string }>('select name, statement from pg_prepared_statements')).rows;

  it('prepares a statement once on its connection, under a name made of its text, and runs it by that name', () =>
    withPool(async (handle, refusals) => {
      expect(await nameById.run(handle.db, { id: 1 })).toEqual([{ name: 'one' }]);
      expect(await nameById.run(handle.db, { id: 2 })).toEqual([{ name: 'two' }]);
      await handle.db.transaction(async (tx) => expect(await nameById.run(tx, { id: 1 })).toEqual([{ name: 'one' }]));
      expect(await prepared(handle)).toEqual([{ name: statementName(statementText), statement: statementText }]);
      // Another text, another name: one name never stands for two statements.
      expect(statementName(`${statementText} `)).not.toBe(statementName(statementText));
      expect(refusals).toEqual([]);
    }));

  it('in a transaction, a forgotten name fails the transaction as unavailable (503), names go off, and the retry runs unnamed', () =>
    withPool(async (handle, refusals) => {
      await nameById.run(handle.db, { id: 1 });
      await handle.pool.query('deallocate all');
      const failed = await handle.db.transaction(async (tx) => nameById.run(tx, { id: 1 })).catch((err: unknown) => err);
      expect(failed).toBeInstanceOf(NamedStatementRefused);
      expect(databaseUnavailable(failed)).toBe(true);
      expect(refusals.map((e) => e.code)).toEqual(['26000']);
      await handle.db.transaction(async (tx) => expect(await nameById.run(tx, { id: 2 })).toEqual([{ name: 'two' }]));
      expect(await nameById.run(handle.db, { id: 1 })).toEqual([{ name: 'one' }]);
      expect(await prepared(handle)).toEqual([]);
      expect(refusals).toHaveLength(1);
    }));

  const refusedOnThePool: Array<[string, string, (handle: NodePgHandle) => Promise<void>]> = [
    // Prepared, then the connection's backend forgets it (a pooler moved it): 26000 on the bind.
    ['a name the backend does not know', '26000', async (handle) => {
      await nameById.run(handle.db, { id: 1 });
      await handle.pool.query('deallocate all');
    }],
    // Another client prepared it on this backend first: 42P05 on the parse.
    ['a name the backend already has', '42P05', async (handle) => {
      await handle.pool.query(`prepare "${statementName(statementText)}" as ${statementText}`);
    }],
  ];
  it.each(refusedOnThePool)('on the pool, %s (%s): the statement runs again unnamed, and names go off with one warning', (_case, code, arrange) =>
    withPool(async (handle, refusals) => {
      await arrange(handle);
      const runs = await Promise.all([1, 2, 1].map((id) => nameById.run(handle.db, { id })));
      expect(runs).toEqual([[{ name: 'one' }], [{ name: 'two' }], [{ name: 'one' }]]);
      expect(refusals.map((e) => e.code)).toEqual([code]);
      await handle.pool.query('deallocate all');
      expect(await nameById.run(handle.db, { id: 2 })).toEqual([{ name: 'two' }]);
      expect(await prepared(handle)).toEqual([]);
    }));
  it('a column whose type a migration changed under the running pool: the statement prepared with the old parameter type runs again unnamed, the transaction that met it answers 503 and its retry passes', async () => {
    const kinds = `named_statement_kinds_${process.pid}`;
    const kind = pgTable(`named_statement_typed_${process.pid}`, { id: integer('id').primaryKey(), kind: text('kind').notNull() });
    const kindTable = kind[Symbol.for('drizzle:Name') as never] as string;
    const insertKind = statement<unknown>((db) => db.execute(sql`insert into ${kind} (id, kind) values (${sql.placeholder('id')}, ${sql.placeholder('kind')})`));
    await admin.pool.query(`create table "${kindTable}" (id integer primary key, kind text not null)`);
    try {
      await withPool(async (handle, refusals) => {
        await insertKind.run(handle.db, { id: 1, kind: 'a' }); // prepared: $2 is text
        await admin.pool.query(`create type "${kinds}" as enum ('a', 'b', 'c')`);
        await admin.pool.query(`alter table "${kindTable}" alter column kind type "${kinds}" using kind::"${kinds}"`);
        const failed = await handle.db.transaction(async (tx) => insertKind.run(tx, { id: 2, kind: 'b' })).catch((err: unknown) => err);
        expect(failed).toBeInstanceOf(NamedStatementRefused);
        expect(databaseUnavailable(failed)).toBe(true);
        expect(refusals.map((e) => e.code)).toEqual(['42804']);
        await handle.db.transaction(async (tx) => insertKind.run(tx, { id: 2, kind: 'b' }));
        await insertKind.run(handle.db, { id: 3, kind: 'c' });
        expect((await admin.pool.query(`select id, kind::text from "${kindTable}" order by id`)).rows).toEqual([
          { id: 1, kind: 'a' },
          { id: 2, kind: 'b' },
          { id: 3, kind: 'c' },
        ]);
      });
      // On the pool itself the first run after the change already passes.
      await withPool(async (handle, refusals) => {
        await admin.pool.query(`alter table "${kindTable}" alter column kind type text`);
        await insertKind.run(handle.db, { id: 4, kind: 'a' }); // prepared: $2 is text
        await admin.pool.query(`alter table "${kindTable}" alter column kind type "${kinds}" using kind::"${kinds}"`);
        await insertKind.run(handle.db, { id: 5, kind: 'b' });
        expect(refusals.map((e) => e.code)).toEqual(['42804']);
        expect((await admin.pool.query(`select count(*)::int as n from "${kindTable}"`)).rows).toEqual([{ n: 5 }]);
      });
    } finally {
      await admin.pool.query(`drop table if exists "${kindTable}"`);
      await admin.pool.query(`drop type if exists "${kinds}"`);
    }
  });

  it('the server names its statements; a command (admin, cleanup, backup) does not, so a pooler holding the server\'s names cannot refuse it', async () => {
    const config = parseConfig({ DATABASE_URL: url, DATA_DIR: '/nonexistent-unused' }, 'x'.repeat(32));
    for (const [use, expected] of [['server', 1], ['command', 0]] as const) {
      const database = await openDatabase(config, { for: use });
      try {
        const names = await database.db.transaction(async (tx) => {
          await nameById.run(tx, { id: 1 });
          return ((await tx.execute(sql`select count(*)::int as n from pg_prepared_statements`)) as unknown as { rows: Array<{ n: number }> }).rows;
        });
        expect(names).toEqual([{ n: expected }]);
      } finally {
        await database.close();
      }
    }
  });
});

describe.skipIf(!url)('the server (npm start) under a migration that changes a column type', () => {
  it('keeps answering: at most one write meets the refusal (503), every later one passes, and the log says so once', { timeout: 120_000 }, async () => {
    const database = await freshDatabase(url!, 'orbital_named');
    const server = await startServerProcess({ DATABASE_URL: database.url, DATA_DIR: newDataDir('orbital-named-'), RATE_LIMIT: 'off' });
    try {
      const t = targetOf(server);
      const owner = await registerUser(t);
      const orbit = await createOrbit(t, owner);
      const thread = (n: number) =>
        t.fetch('/api/threads', post({ group_id: orbit.id, key_epoch: 1, encrypted_title: b64(8), encrypted_body: b64(16 + n) }, owner.auth));
      for (let i = 0; i < 3; i++) expect((await thread(i)).status).toBe(201); // the event insert is prepared: its type is text
      // What a newer version's migration could do while this one still serves (a rolling deploy).
      await runSql(database.url, `create type orbit_event_type as enum ('thread_created', 'thread_deleted', 'reply_created', 'reply_deleted', 'media_uploaded', 'media_deleted',
        'media_expired', 'member_joined', 'member_left', 'member_key_delivered', 'member_key_reset', 'key_rotated', 'message_created', 'group_updated')`);
      await runSql(database.url, 'alter table orbit_events alter column type type orbit_event_type using type::orbit_event_type');
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) statuses.push((await thread(i)).status);
      expect(statuses.filter((s) => s === 503).length).toBeLessThanOrEqual(1);
      expect(statuses.slice(statuses.indexOf(503) + 1).every((s) => s === 201)).toBe(true);
      expect(statuses.filter((s) => s === 201).length).toBeGreaterThanOrEqual(9);
      expect(server.output().split('\n').filter((l) => l.includes('refused a named statement'))).toHaveLength(1);
    } finally {
      await server.kill();
      await database.drop();
    }
  });
});

