// `npm run restore -- <file>`: an archive of `npm run backup` into an empty data dir (embedded
// database and disk store) or an empty Postgres database, all or nothing. Start the server on it
// afterwards as usual.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { lockDataDir, prepareDataDir } from '../runtime/data-dir';
import { loadNodeConfig } from '../runtime/node';
import { fileArgument, runCommand, withDatabase } from './entry';
import { RestoreRefused, removeRestored, restoreFromFile } from '../runtime/backup/restore';
import { restoreTarget } from '../runtime/backup/source';

const USAGE = `Usage: npm run restore -- <file>

Restores an archive of \`npm run backup\` into the configured database (DATABASE_URL, or the
embedded one in DATA_DIR) and disk store, which must be empty; the server must not be running on
them. Everything is restored or nothing is.`;

const MEDIA_BUSY = 'a restore writes media into its disk store one process at a time. Wait for that process to end (or stop it), then restore again.';

async function main(): Promise<number> {
  const arg = fileArgument(process.argv.slice(2), USAGE);
  if (typeof arg === 'number') return arg;
  const file = resolve(arg);
  if (!existsSync(file)) return console.error(`No such file: ${file}`), 1;
  const config = await loadNodeConfig();
  // The embedded database holds DATA_DIR's lock while open; with Postgres the disk store's folder
  // still needs it, or two restores at once could mix their media.
  const lock = config.DATABASE_URL && config.BLOB_STORE === 'disk' ? (prepareDataDir(config.DATA_DIR), lockDataDir(config.DATA_DIR, MEDIA_BUSY)) : null;
  const written = new Set<string>();
  const m = await withDatabase(config, (database) => {
    const target = restoreTarget(config, database);
    // Ctrl-C runs no `catch`: the media files written so far go here (the database rolls back itself).
    const interrupted = () => {
      removeRestored(target, written);
      console.error('Interrupted: nothing was restored.');
      process.exit(130);
    };
    process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
    return restoreFromFile(file, target, written);
  }).finally(() => lock?.release());
  const rows = m.tables.reduce((a, t) => a + t.rows, 0);
  console.log(`Restored ${rows} rows in ${m.tables.length} tables and ${m.blobs.included ? `${m.blobs.files} media files` : 'no media files'} from a backup of ${m.created_at}.`);
  if (m.note) console.log(m.note);
  return 0;
}

runCommand('restore', main, [RestoreRefused]);
