// One database session for a backup or a restore: a snapshot every table is read from, or the one
// transaction a restore writes in. node-postgres: a client of its own. PGlite: its transaction,
// during which the server's other queries wait (PGlite is one connection).
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';
import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { Exec } from '../../db/migrate';
import { BACKUP_LOCK } from '../../domain/blob-queue';

export type RawQuery = (text: string, params?: unknown[]) => Promise<Array<Record<string, unknown>>>;

export interface Session {
  raw: RawQuery;
  exec: Exec;
}


const dialect = new PgDialect();
const withExec = (raw: RawQuery): Session => ({
  raw,
  exec: (query: SQL) => {
    const { sql, params } = dialect.sqlToQuery(query);
    return raw(sql, params);
  },
});

export type DatabaseHandle = { pool: pg.Pool } | { pglite: PGlite };

const inPglite = <T>(pglite: PGlite, work: (s: Session) => Promise<T>) =>
  pglite.transaction((tx) => work(withExec(async (text, params) => (await tx.query<Record<string, unknown>>(text, params)).rows)));

/** One transaction on a client of its own; `lock`: the backup lock held from before it begins to its end. */
async function onClient<T>(pool: pg.Pool, begin: string, lock: boolean, work: (s: Session) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    if (lock) await client.query('select pg_advisory_lock($1)', [BACKUP_LOCK]);
    try {
      await client.query(begin);
      const out = await work(withExec(async (text, params) => (await client.query(text, params as unknown[])).rows));
      await client.query('commit');
      return out;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      if (lock) await client.query('select pg_advisory_unlock($1)', [BACKUP_LOCK]).catch(() => undefined);
    }
  } finally {
    client.release();
  }
}

/**
 * A consistent read of the whole database: REPEATABLE READ on Postgres (blob deletions claimed
 * from before its snapshot wait for its end), the exclusive transaction on PGlite.
 */
export const inSnapshot = <T>(handle: DatabaseHandle, work: (s: Session) => Promise<T>): Promise<T> =>
  'pglite' in handle ? inPglite(handle.pglite, work) : onClient(handle.pool, 'begin isolation level repeatable read read only', true, work);

/** One read-write transaction: all of it commits, or nothing does. */
export const inTransaction = <T>(handle: DatabaseHandle, work: (s: Session) => Promise<T>): Promise<T> =>
  'pglite' in handle ? inPglite(handle.pglite, work) : onClient(handle.pool, 'begin', false, work);
