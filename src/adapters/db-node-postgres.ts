// Postgres through node-postgres with a pool (Node with DATABASE_URL).
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { NodePgSession, NodePgTransaction } from 'drizzle-orm/node-postgres/session';
import type { Db } from '../deps';
import { keepPoolErrorsHandled } from './pool-errors';
import { usePlainTransactions, type DriverClasses } from './plain-transactions';

/** node-postgres' session classes, as drizzle builds them (also for Hyperdrive, which is node-postgres). */
export const nodePgClasses = { Session: NodePgSession, Transaction: NodePgTransaction } as unknown as DriverClasses;

export interface NodePgHandle {
  db: Db;
  pool: pg.Pool;
  close(): Promise<void>;
}

export function openNodePostgres(connectionString: string, max = 10): NodePgHandle {
  // A database host that does not answer at all (or a pool queue that does not move for 30 s)
  // fails the request with 503 instead of hanging it.
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 30_000 });
  keepPoolErrorsHandled(pool);
  const db = drizzle({ client: pool }) as unknown as Db;
  usePlainTransactions(db, pool, nodePgClasses);
  return { db, pool, close: () => pool.end() };
}
