// Retention and housekeeping, one function behind three triggers (Workers cron, the Node
// schedule, `npm run cleanup`). Every step is a set of conditional writes in small batches, so
// it resumes after a crash and two runs at once never do the same work twice.
import { and, inArray, isNotNull, lt, lte, or, sql, type SQL } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import { auditEvents, idempotencyKeys, invites, liveTickets, media, orbitEvents, rateLimits, registrationCodes, sessions, signalMessages } from '../db/schema';
import { spentRegistrationCodes } from './registration/codes';
import { expiredAudit } from './audit/read';
import type { Deps } from '../deps';
import { IDEMPOTENCY_TTL_MS } from '../http/idempotency';
import { REFRESH_IDLE_MS } from './auth';
import { countDueBlobDeletions, drainBlobDeletions } from './blob-queue';
import { countExpirable, expireStaleUploads, recomputeQuotas, removeExpiredMedia } from './media/expiry';

export const BATCH = 500;
const DAY = 86_400_000;

export interface CleanupOptions {
  now?: Date;
  dryRun?: boolean;
  /** At most this many blob deletions per run (Workers count storage calls); default: all due. */
  blobLimit?: number;
}

/** Aborted and expired upload sessions answer 409/410 to late chunks for this long, then go. */
export const CLOSED_UPLOAD_KEEP_MS = 7 * 86_400_000;

export type CleanupReport = Record<string, number>;

type CleanupDeps = Pick<Deps, 'db' | 'blobs' | 'config' | 'clock' | 'fanout' | 'defer' | 'logger'>;

/**
 * Deletes rows matching `where` in batches of BATCH (by ctid, so any table fits) and returns how
 * many went; with dryRun only counts them.
 */
export async function sweep(db: CleanupDeps['db'], table: PgTable, where: SQL, dryRun: boolean): Promise<number> {
  if (dryRun) return db.$count(table, where);
  let total = 0;
  for (;;) {
    const result = await db.execute(sql`delete from ${table} where ctid in (select ctid from ${table} where ${where} limit ${BATCH})`);
    const n = affected(result);
    total += n;
    if (n < BATCH) return total;
  }
}

/** Rows touched by a statement, whatever the driver's result shape. */
export function affected(result: unknown): number {
  const r = result as { rowCount?: number | null; affectedRows?: number };
  return Number(r.rowCount ?? r.affectedRows ?? 0);
}

export async function runCleanup(deps: CleanupDeps, options: CleanupOptions = {}): Promise<CleanupReport> {
  const now = options.now ?? deps.clock.now();
  const dryRun = options.dryRun ?? false;
  const { db, config } = deps;
  const ago = (ms: number) => new Date(now.getTime() - ms);
  const report: CleanupReport = {};

  // Media first: expired files and sessions queue their blobs, then the queue is worked.
  if (dryRun) {
    const due = await countExpirable(db, now);
    report.uploads_expired = due.uploads;
    report.media_expired = due.media;
    report.blobs_deleted = await countDueBlobDeletions(db, now);
  } else {
    const touched = new Set<string>();
    report.uploads_expired = await expireStaleUploads(deps, now, touched);
    report.media_expired = await removeExpiredMedia(deps, now, touched);
    report.blobs_deleted = await drainBlobDeletions(db, deps.blobs, now, { limit: options.blobLimit });
    report.quotas_recomputed = await recomputeQuotas(db, touched, now);
  }
  // Their blobs were queued when they closed; the rows only answered late chunks.
  report.closed_uploads = await sweep(
    db,
    media,
    and(inArray(media.status, ['aborted', 'expired']), lt(media.uploadExpiresAt, ago(CLOSED_UPLOAD_KEEP_MS)))!,
    dryRun,
  );
  report.messages = await sweep(db, signalMessages, lt(signalMessages.createdAt, ago(config.MESSAGE_RETENTION_DAYS * DAY))!, dryRun);
  report.events = await sweep(db, orbitEvents, lt(orbitEvents.at, ago(config.EVENT_RETENTION_DAYS * DAY))!, dryRun);
  report.invites = await sweep(db, invites, or(lte(invites.expiresAt, now), isNotNull(invites.revokedAt), sql`${invites.uses} >= ${invites.maxUses}`)!, dryRun);
  report.audit_events = await sweep(db, auditEvents, expiredAudit(ago(config.AUDIT_RETENTION_DAYS * DAY)), dryRun);
  report.registration_codes = await sweep(db, registrationCodes, spentRegistrationCodes(now), dryRun);
  report.idempotency_keys = await sweep(db, idempotencyKeys, lt(idempotencyKeys.createdAt, ago(IDEMPOTENCY_TTL_MS))!, dryRun);
  // A session (refresh family) is dead once revoked, past its absolute expiry, or idle too long.
  report.sessions = await sweep(
    db,
    sessions,
    or(isNotNull(sessions.revokedAt), lte(sessions.expiresAt, now), lt(sessions.lastUsedAt, ago(REFRESH_IDLE_MS)))!,
    dryRun,
  );
  report.tickets = await sweep(db, liveTickets, or(lte(liveTickets.expiresAt, now), isNotNull(liveTickets.usedAt))!, dryRun);
  report.rate_limits = await sweep(db, rateLimits, lte(rateLimits.windowEnd, now)!, dryRun);

  deps.logger.log('info', { msg: 'cleanup', dry_run: dryRun, ...report });
  return report;
}
