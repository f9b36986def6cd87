// Embedded Postgres (PGlite, WASM) for `npm start` with nothing installed, and for tests.
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import type { Db } from '../deps';

export interface PgliteHandle {
  db: Db;
  client: PGlite;
  close(): Promise<void>;
}

/**
 * A PGlite database in `dataDir` (persistent), in memory when omitted, or loaded from a dump.
 * `settings`: postgresql.conf lines (tests start theirs with smaller shared_buffers: half the CPU).
 */
export async function openPglite(options: { dataDir?: string; loadDataDir?: Blob | File; settings?: string[] } = {}): Promise<PgliteHandle> {
  const client = await PGlite.create({ dataDir: options.dataDir, loadDataDir: options.loadDataDir, postgresqlconf: options.settings });
  const db = drizzle({ client }) as unknown as Db;
  return { db, client, close: () => client.close() };
}
