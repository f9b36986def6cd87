// Postgres through node-postgres with a pool (Node with DATABASE_URL).
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import type { Db } from '../deps';

export interface NodePgHandle {
  db: Db;
  pool: pg.Pool;
  close(): Promise<void>;
}

export function openNodePostgres(connectionString: string, max = 10): NodePgHandle {
  // A database host that does not answer at all (or a pool queue that does not move for 30 s)
  // fails the request with 503 instead of hanging it.
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 30_000 });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const db = drizzle({ client: pool }) as unknown as Db;
  return { db, pool, close: () => pool.end() };
}
