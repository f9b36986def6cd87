// `npm run admin -- <command> [--json] [--yes]`: accounts, sessions, orbits and storage, against
// DATABASE_URL or the embedded database in DATA_DIR (stop the server first: one process at a time).
import { ConfigError } from '../config';
import { DataDirBusy } from '../runtime/data-dir';
import { adminMain } from './admin-main';

adminMain(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof ConfigError || err instanceof DataDirBusy ? err.message : `admin failed: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    process.exit(1);
  },
);
