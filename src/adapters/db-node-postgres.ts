// Postgres through node-postgres with a pool (Node with DATABASE_URL).
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { NodePgSession, NodePgTransaction } from 'drizzle-orm/node-postgres/session';
import type { Db } from '../deps';
import { allowNamedStatements } from '../db/named-statements';
import { keepPoolErrorsHandled } from './pool-errors';
import { endSilentConnections } from './silent-connections';
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
   * The server's bounds on its connections, so a network partition cannot wedge it or the database.
   * Postgres cancels a statement that runs (or waits on a lock) longer than this, and ends a session
   * left idle inside a transaction this long: a cut-off connection's transaction would otherwise
   * hold its row locks until Postgres' TCP keepalive notices, two hours by default. Here, a
   * connection whose statement has had no answer 5 s after that is ended (src/adapters/silent-
   * connections.ts). Commands (migrate, backup) and the migrations at start run without them.
   */
  boundMs?: number;
  /**
   * Statements built once are named (src/db/named-statements.ts): the server's pool, whose
   * connections live long enough to reuse them. Told once if they are refused, and off from then.
   */
  named?: { refused(err: unknown): void };
}

export function openNodePostgres(connectionString: string, max = 10, options: NodePgOptions = {}): NodePgHandle {
  // A database host that does not answer at all (or a pool queue that does not move for 30 s)
  // fails the request with 503 instead of hanging it. Keepalive finds idle connections whose
  // peer is gone.
  const bound = options.boundMs;
  const pool = new pg.Pool({
    connectionString,
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 30_000,
    keepAlive: true,
    ...(bound ? { statement_timeout: bound, idle_in_transaction_session_timeout: bound } : {}),
  });
  keepPoolErrorsHandled(pool);
  if (options.named) allowNamedStatements(pool, options.named.refused);
  const unwatch = bound ? endSilentConnections(pool, bound + 5_000) : () => {};
  const db = drizzle({ client: pool }) as unknown as Db;
  usePlainTransactions(db, pool, nodePgClasses);
  return {
    db,
    pool,
    close: () => {
      unwatch();
      return pool.end();
    },
  };
}
