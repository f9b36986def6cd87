// The local database for `npm run dev:worker`: created on first use, migrated on every start.
import pg from 'pg';
import { openNodePostgres } from '../../src/adapters/db-node-postgres';
import { migrate } from '../../src/db/migrate';

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || host === '::1' || host.startsWith('127.');
}

export async function prepareDatabase(url: URL): Promise<{ name: string; created: boolean; applied: number }> {
  const name = decodeURIComponent(url.pathname.slice(1)) || 'postgres';
  const maintenance = new URL(url);
  maintenance.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: maintenance.toString() });
  await admin.connect();
  let created = false;
  try {
    const found = await admin.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) {
      await admin.query(`create database ${admin.escapeIdentifier(name)}`);
      created = true;
    }
  } finally {
    await admin.end();
  }
  const handle = openNodePostgres(url.toString(), 1);
  try {
    return { name, created, applied: await migrate(handle.db) };
  } finally {
    await handle.close();
  }
}
