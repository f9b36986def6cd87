// A throwaway Postgres database for a benchmark, when a server is reachable
// (BENCH_DATABASE_URL, default the local one); null otherwise.
import { freshDatabase } from '../test/support/server-process';

export async function freshPostgres(): Promise<{ url: string; drop(): Promise<void> } | null> {
  const base = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  try {
    return await freshDatabase(base, 'orbital_bench');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED' || /timeout/i.test(String(err))) return null;
    throw err;
  }
}
