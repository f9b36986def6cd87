// Postgres from Workers through the Neon serverless driver (WebSockets). A Pool per request:
// Workers cannot share I/O objects between requests.
import { neonConfig, Pool } from '@neondatabase/serverless';
import { drizzle } from 'drizzle-orm/neon-serverless';
import * as schema from '../db/schema';
import type { Db } from '../deps';

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
  pool.on('error', () => {});
  const db = drizzle({ client: pool, schema }) as unknown as Db;
  return { db, pool, close: () => pool.end().catch(() => {}) };
}
