// CI check: drizzle/ holds every change of src/db/schema.ts, and the bundled module matches drizzle/.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleMigrations, GENERATED } from './bundle-migrations';

const scratch = mkdtempSync(join(tmpdir(), 'orbital-migrations-'));
try {
  cpSync('drizzle', scratch, { recursive: true });
  const before = readdirSync(scratch).filter((f) => f.endsWith('.sql')).length;
  execFileSync('npx', ['drizzle-kit', 'generate', '--dialect', 'postgresql', '--schema', 'src/db/schema.ts', '--out', scratch], { stdio: 'pipe' });
  const after = readdirSync(scratch).filter((f) => f.endsWith('.sql'));
  if (after.length !== before) {
    console.error(`schema.ts has changes without a migration: run npm run db:generate (would add ${after.slice(before).join(', ')})`);
    process.exit(1);
  }
  if (readFileSync(GENERATED, 'utf8') !== bundleMigrations('drizzle')) {
    console.error(`${GENERATED} is stale: run npm run db:generate`);
    process.exit(1);
  }
  console.log('schema, migrations and bundle agree');
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
