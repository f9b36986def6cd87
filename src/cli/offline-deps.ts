// What the operator commands (admin, cleanup) share: the server's configuration and database —
// DATABASE_URL, or the embedded one in DATA_DIR, whose lock refuses while the server holds it —
// migrated, with the Node ports built quietly; the ports (live hub timers, LISTEN connection) and
// the database are closed afterwards whatever the work did.
import type { Config } from '../config';
import { migrate } from '../db/migrate';
import { buildNodeDeps, type NodeDeps } from '../runtime/node-deps';
import { loadNodeConfig, openDatabase } from '../runtime/node';

/** The configured database, migrated, and the ports over it; `close` ends both. */
export async function openOfflineDeps(config: Config, use: { for: 'server' | 'command' } = { for: 'command' }): Promise<{ deps: NodeDeps; close(): Promise<void> }> {
  const database = await openDatabase(config, use);
  try {
    await migrate(database.db);
    const deps = await buildNodeDeps({ config, db: database.db, logger: { log: () => {} } });
    return { deps, close: () => deps.stop().finally(() => database.close()) };
  } catch (err) {
    await database.close();
    throw err;
  }
}

export async function withOfflineDeps<T>(work: (deps: NodeDeps) => Promise<T>): Promise<T> {
  const { deps, close } = await openOfflineDeps(await loadNodeConfig());
  try {
    return await work(deps);
  } finally {
    await close();
  }
}
