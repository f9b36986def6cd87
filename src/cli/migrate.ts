// `npm run db:migrate`: applies the bundled migrations to DATABASE_URL (or the PGlite in DATA_DIR;
// refused with one line while a server holds that folder: the server migrates at start anyway).
import { ConfigError } from '../config';
import { migrate } from '../db/migrate';
import { loadNodeConfig, openDatabase } from '../runtime/node';

try {
  const config = await loadNodeConfig();
  const database = await openDatabase(config, { for: 'command' });
  try {
    const applied = await migrate(database.db);
    console.log(`${applied} migration(s) applied to ${database.kind}`);
  } finally {
    await database.close();
  }
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `db:migrate failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
