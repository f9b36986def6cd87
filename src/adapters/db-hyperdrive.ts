// Postgres from Workers through Hyperdrive: node-postgres over the binding's connection string
// (TCP sockets, nodejs_compat). Hyperdrive pools the connections to the database at the edge, so
// the Worker's own start-up and auth stay inside Cloudflare. A pool per request: Workers cannot
// share I/O objects between requests; a pool rather than one client keeps a transaction's
// statements apart from the request's other queries (as the Neon path does).
import pg from 'pg';
import * as pgCloudflare from 'pg-cloudflare';
import { drizzle } from 'drizzle-orm/node-postgres';
import type { Db } from '../deps';
import { nodePgClasses } from './db-node-postgres';
import { keepPoolErrorsHandled } from './pool-errors';
import { usePlainTransactions } from './plain-transactions';

interface SocketShim {
  end(data?: Uint8Array, encoding?: string, callback?: (err?: unknown) => void): SocketShim;
  destroy(reason?: unknown): SocketShim;
  write(data: Uint8Array, encoding?: string, callback?: (err?: unknown) => void): unknown;
  destroyed: boolean;
}
type SocketShimClass = new (ssl: boolean) => SocketShim;
// Types resolve to the package's empty Node build; inside workerd the class is there.
const { CloudflareSocket } = pgCloudflare as unknown as { CloudflareSocket: SocketShimClass };

/**
 * pg's socket shim closes the socket right after writing Terminate, while its read loop is still
 * waiting; workerd then reports that read's rejection as unhandled ("This socket has been
 * closed.") on every connection. Postgres (and Hyperdrive) close the connection themselves after
 * Terminate: wait for that. destroy() still closes at once.
 */
function terminatingSocket(): SocketShimClass {
  return class extends CloudflareSocket {
    override end(data?: Uint8Array, encoding?: string, callback?: (err?: unknown) => void) {
      this.write(data ?? new Uint8Array(0), encoding ?? 'utf8', (err) => callback?.(err));
      return this;
    }
    override destroy() {
      this.destroyed = true;
      return super.end();
    }
  };
}

export function openHyperdrive(connectionString: string): { db: Db; pool: pg.Pool; close(): Promise<void> } {
  const Socket = terminatingSocket();
  const pool = new pg.Pool({ connectionString, max: 4, stream: (config: { ssl?: unknown }) => new Socket(Boolean(config.ssl)) } as pg.PoolConfig);
  keepPoolErrorsHandled(pool);
  const db = drizzle({ client: pool }) as unknown as Db;
  usePlainTransactions(db, pool, nodePgClasses);
  return { db, pool, close: () => pool.end().catch(() => {}) };
}
