// Transactions on node-postgres send begin, commit and rollback as plain text
// (src/adapters/plain-transactions.ts). What a caller relies on stays as drizzle's: the work commits
// or rolls back as a whole, tx.rollback() stores nothing, options still apply. Where they differ,
// the caller gets the work's own error (not the failed rollback's), and a connection that died
// inside a transaction is not handed to the next one. Needs Postgres (TEST_DATABASE_URL).
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNodePostgres, type NodePgHandle } from '../../src/adapters/db-node-postgres';

const url = process.env.TEST_DATABASE_URL;
if (!url) console.warn('plain-transactions: skipped (set TEST_DATABASE_URL)');
const table = sql.raw(`plain_tx_test_${process.pid}_${Math.random().toString(36).slice(2, 8)}`);

describe.skipIf(!url)('transactions on node-postgres', () => {
  let handle: NodePgHandle;
  let admin: pg.Client;
  const names = async () => ((await handle.db.execute(sql`select name from ${table} order by name`)) as unknown as { rows: Array<{ name: string }> }).rows.map((r) => r.name);

  beforeAll(async () => {
    // One connection: a transaction that kept its client checked out would stall every later one.
    handle = openNodePostgres(url!, 1);
    admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await handle.db.execute(sql`create table ${table} (name text primary key)`);
  });
  afterAll(async () => {
    await handle?.db.execute(sql`drop table if exists ${table}`);
    await handle?.close();
    await admin?.end();
  });

  it('commits the work as a whole, and rolls all of it back when the work fails', async () => {
    await handle.db.transaction(async (tx) => {
      await tx.execute(sql`insert into ${table} values ('a')`);
      await tx.execute(sql`insert into ${table} values ('b')`);
    });
    const failure = handle.db.transaction(async (tx) => {
      await tx.execute(sql`insert into ${table} values ('c')`);
      await tx.execute(sql`insert into ${table} values ('a')`); // duplicate key
    });
    await expect(failure).rejects.toMatchObject({ cause: { code: '23505' } });
    await expect(handle.db.transaction((tx) => tx.rollback())).rejects.toThrow('Rollback');
    expect(await names()).toEqual(['a', 'b']);
  });

  it('applies transaction options', async () => {
    const level = await handle.db.transaction(
      async (tx) => ((await tx.execute(sql`select current_setting('transaction_isolation') as level`)) as unknown as { rows: Array<{ level: string }> }).rows[0]!.level,
      { isolationLevel: 'serializable' },
    );
    expect(level).toBe('serializable');
  });

  it("reports the work's error when the connection dies inside the transaction, and does not reuse that connection", async () => {
    const failure = handle.db.transaction(async (tx) => {
      const { rows } = (await tx.execute(sql`select pg_backend_pid() as pid`)) as unknown as { rows: Array<{ pid: number }> };
      await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
      await tx.execute(sql`insert into ${table} values ('lost')`);
    });
    // The insert's failure (Postgres' 57P01, or the connection found ended), not the rollback's.
    await expect(failure).rejects.toThrow(/^Failed query: insert into/);
    await handle.db.transaction((tx) => tx.execute(sql`insert into ${table} values ('next')`));
    expect(await names()).toEqual(['a', 'b', 'next']);
  });
});
