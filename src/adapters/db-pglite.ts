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
 * `settings`: postgresql.conf lines, written over the data dir's file (tests start theirs with
 * smaller shared_buffers: half the CPU). `runSettings`: the same for this run only (`-c`), leaving
 * the file as it is.
 */
export async function openPglite(options: { dataDir?: string; loadDataDir?: Blob | File; settings?: string[]; runSettings?: string[] } = {}): Promise<PgliteHandle> {
  const startParams = options.runSettings && [...PGlite.defaultStartParams, ...options.runSettings.flatMap((s) => ['-c', s])];
  const client = await PGlite.create({ dataDir: options.dataDir, loadDataDir: options.loadDataDir, postgresqlconf: options.settings, startParams });
  const db = drizzle({ client }) as unknown as Db;
  return { db, client, close: () => client.close() };
}
