// `npm run db:migrate`: applies the bundled migrations to DATABASE_URL (or the PGlite in DATA_DIR).
import { migrate } from '../db/migrate';
import { loadNodeConfig, openDatabase } from '../runtime/node';

const config = await loadNodeConfig();
const database = await openDatabase(config);
try {
  const applied = await migrate(database.db);
  console.log(`${applied} migration(s) applied to ${database.kind}`);
} finally {
  await database.close();
}
