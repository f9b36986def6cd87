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

export interface NodePgOptions {
  /**
   * A statement whose answer has not come after this long fails, and its connection is dropped.
   * For the server: a connection that went silent (a network partition, a proxy that stopped
   * passing bytes) would otherwise hold its pool slot until the kernel gives up, ~15 minutes,
   * and ten of them wedge every request. Commands (migrate, backup) run without it.
   */
  queryTimeoutMs?: number;
}

export function openNodePostgres(connectionString: string, max = 10, options: NodePgOptions = {}): NodePgHandle {
  // A database host that does not answer at all (or a pool queue that does not move for 30 s)
  // fails the request with 503 instead of hanging it. Keepalive finds idle connections whose
  // peer is gone.
  const pool = new pg.Pool({
    connectionString,
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 30_000,
    keepAlive: true,
    ...(options.queryTimeoutMs ? { query_timeout: options.queryTimeoutMs } : {}),
  });
  keepPoolErrorsHandled(pool);
  const db = drizzle({ client: pool }) as unknown as Db;
  usePlainTransactions(db, pool, nodePgClasses);
  return { db, pool, close: () => pool.end() };
}
