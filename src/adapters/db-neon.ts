// Postgres from Workers through the Neon serverless driver (WebSockets). A Pool per request:
// Workers cannot share I/O objects between requests.
import { neonConfig, Pool } from '@neondatabase/serverless';
import { drizzle } from 'drizzle-orm/neon-serverless';
import { NeonSession, NeonTransaction } from 'drizzle-orm/neon-serverless/session';
import type { Db } from '../deps';
import { keepPoolErrorsHandled } from './pool-errors';
import { usePlainTransactions, type DriverClasses } from './plain-transactions';

export interface NeonOptions {
  /** host:port of a WebSocket-to-TCP proxy (local Postgres in dev and tests); unset for Neon itself. */
  wsProxy?: string;
}

export function openNeon(connectionString: string, options: NeonOptions = {}): { db: Db; pool: Pool; close(): Promise<void> } {
  if (options.wsProxy) {
    const proxy = options.wsProxy;
    neonConfig.wsProxy = (host, port) => `${proxy}/?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
  const pool = new Pool({ connectionString, max: 4 });
  keepPoolErrorsHandled(pool);
  const clients = new Set<{ connection?: { stream?: { end?(): void } } }>();
  pool.on('connect', (client: unknown) => void clients.add(client as never));
  const db = drizzle({ client: pool }) as unknown as Db;
  usePlainTransactions(db, pool, { Session: NeonSession, Transaction: NeonTransaction } as unknown as DriverClasses);
  return {
    db,
    pool,
    async close() {
      await pool.end().catch(() => {});
      // The driver's socket shim drops the callback pg hands to write() with the Terminate message,
      // so pg never ends the stream and the WebSocket stays open for the isolate's life (a Durable
      // Object's is long): end it here, after the driver has flushed its coalesced writes (a 0 ms timer).
      if (!clients.size) return;
      await new Promise((resolve) => setTimeout(resolve, 1));
      for (const client of clients) client.connection?.stream?.end?.();
    },
  };
}
