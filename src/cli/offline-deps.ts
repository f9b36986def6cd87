// What the operator commands (admin, cleanup) share: the server's configuration and database —
// DATABASE_URL, or the embedded one in DATA_DIR, whose lock refuses while the server holds it —
// migrated, with the Node ports built quietly; the ports (live hub timers, LISTEN connection) and
// the database are closed afterwards whatever the work did.
import { migrate } from '../db/migrate';
import { buildNodeDeps, type NodeDeps } from '../runtime/node-deps';
import { loadNodeConfig } from '../runtime/node';
import { withDatabase } from './entry';

export async function withOfflineDeps<T>(work: (deps: NodeDeps) => Promise<T>): Promise<T> {
  const config = await loadNodeConfig();
  return withDatabase(config, async (database) => {
    await migrate(database.db);
    const deps = await buildNodeDeps({ config, db: database.db, logger: { log: () => {} } });
    try {
      return await work(deps);
    } finally {
      await deps.stop();
    }
  });
}
