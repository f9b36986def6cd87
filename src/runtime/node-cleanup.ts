// The Node server's in-process cleanup schedule: hourly, and with several processes on one
// Postgres only one of them at a time (a transaction-scoped advisory lock held for the run).
import { sql } from 'drizzle-orm';
import type { Deps } from '../deps';
import { runCleanup, type CleanupReport } from '../domain/cleanup';

/** Advisory lock key of the cleanup run ("orbital cleanup"); any fixed int8 shared by all processes. */
export const CLEANUP_LOCK_KEY = 0x6f72_6263_6c6e_7570n & 0x7fff_ffff_ffff_ffffn;
export const HOUR_MS = 3600_000;

export type CleanupDeps = Parameters<typeof runCleanup>[0];

/**
 * One scheduled run: under the advisory lock when several processes may share the database
 * (Postgres), directly on PGlite (one process owns its data directory). Null when another
 * process holds the lock.
 */
export async function cleanupOnce(deps: CleanupDeps, useLock: boolean): Promise<CleanupReport | null> {
  if (!useLock) return runCleanup(deps);
  // The lock lives as long as this transaction, on its own pooled connection; the run's own
  // batches commit on other connections. A crashed process releases it with its connection.
  return deps.db.transaction(async (tx) => {
    // The lock's transaction idles for the whole run, longer than the server's bound on idling in
    // a transaction (src/adapters/db-node-postgres.ts) may allow; it holds no row locks.
    await tx.execute(sql`set local idle_in_transaction_session_timeout = 0`);
    const result = (await tx.execute(sql`select pg_try_advisory_xact_lock(${CLEANUP_LOCK_KEY.toString()}::bigint) as locked`)) as unknown as {
      rows: Array<{ locked: boolean }>;
    };
    if (!result.rows[0]?.locked) return null;
    return runCleanup(deps);
  });
}

export interface CleanupSchedule {
  /** Stops scheduling and waits for a run in progress. */
  stop(): Promise<void>;
}

export function scheduleCleanup(
  deps: CleanupDeps & Pick<Deps, 'metrics'>,
  options: { useLock: boolean; everyMs?: number; firstAfterMs?: number },
): CleanupSchedule {
  const every = options.everyMs ?? HOUR_MS;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  let busy = false;
  const tick = () => {
    if (stopped || busy) return;
    busy = true;
    running = cleanupOnce(deps, options.useLock)
      .then((report) => {
        if (!report) deps.logger.log('debug', { msg: 'cleanup skipped: another process is running it' });
        else deps.metrics?.cleanupRun(report);
      })
      .catch((err) => deps.logger.log('error', { msg: 'cleanup failed', error: err instanceof Error ? err.name : String(err) }))
      .finally(() => (busy = false));
  };
  // The first run soon after start (a restart must not postpone retention by an hour), then hourly.
  const first = setTimeout(tick, options.firstAfterMs ?? 60_000);
  const timer = setInterval(tick, every);
  first.unref();
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}
