// The durable blob-deletion queue. Rows that own a blob are deleted in the same transaction that
// enqueues the blob, so a crash between storage and database never orphans a blob; cleanup (and
// an after-commit nudge) works the queue.
import { and, asc, inArray, lte, sql } from 'drizzle-orm';
import { blobDeletions } from '../db/schema';
import type { BlobStore, Executor } from '../deps';

export async function enqueueBlobDeletions(tx: Executor, blobs: Array<{ blobKey: string; uploadHandle: string | null }>, now: Date): Promise<void> {
  if (!blobs.length) return;
  await tx.insert(blobDeletions).values(blobs.map((b) => ({ blobKey: b.blobKey, uploadHandle: b.uploadHandle, createdAt: now, nextAttemptAt: now })));
}

export interface DrainOptions {
  /** At most this many blobs this time (Workers count storage calls); default: all that are due. */
  limit?: number;
  /** Only these blob keys (a request nudging the deletions it just queued). */
  keys?: string[];
}

const CLAIM_BATCH = 200;

/**
 * Held by `npm run backup` (exclusively, from before its snapshot to its end): claims take it
 * shared or claim nothing, so no blob the snapshot names is deleted while the backup links them.
 */
export const BACKUP_LOCK = 727_002;

/**
 * Deletes due blobs. Entries are claimed a batch at a time by pushing their next attempt into
 * the future in one conditional write (locked rows skipped), so concurrent workers never take the
 * same entry; a row goes only after its blob is gone. A crash or a failure leaves the claim to
 * lapse and the entry is retried with backoff; deleting a blob that is already gone is fine.
 */
export async function drainBlobDeletions(db: Executor, blobs: BlobStore, now: Date, limitOrOptions: number | DrainOptions = {}): Promise<number> {
  const options = typeof limitOrOptions === 'number' ? { limit: limitOrOptions } : limitOrOptions;
  if (options.keys && !options.keys.length) return 0;
  let left = options.limit ?? Number.POSITIVE_INFINITY;
  let done = 0;
  while (left > 0) {
    const due = and(lte(blobDeletions.nextAttemptAt, now), options.keys ? inArray(blobDeletions.blobKey, options.keys) : undefined);
    const batch = db
      .select({ id: blobDeletions.id })
      .from(blobDeletions)
      .where(due)
      .orderBy(asc(blobDeletions.nextAttemptAt))
      .limit(Math.min(CLAIM_BATCH, left))
      .for('update', { skipLocked: true });
    const claimed = await db
      .update(blobDeletions)
      .set({
        attempts: sql`${blobDeletions.attempts} + 1`,
        nextAttemptAt: sql`${now}::timestamptz + make_interval(secs => least(3600, 30 * power(2, ${blobDeletions.attempts})))`,
      })
      .where(and(inArray(blobDeletions.id, batch), due, sql`pg_try_advisory_xact_lock_shared(${BACKUP_LOCK})`))
      .returning({ id: blobDeletions.id, key: blobDeletions.blobKey, handle: blobDeletions.uploadHandle });
    if (!claimed.length) break;
    left -= claimed.length;
    const gone = await deleteBlobs(blobs, claimed);
    if (gone.length) await db.delete(blobDeletions).where(inArray(blobDeletions.id, gone));
    done += gone.length;
    if (claimed.length < CLAIM_BATCH) break;
  }
  return done;
}

/** Deletes in bulk; when that fails, one by one, so one bad blob does not hold back the rest. */
async function deleteBlobs(blobs: BlobStore, items: Array<{ id: number; key: string; handle: string | null }>): Promise<number[]> {
  try {
    await blobs.deleteMany(items);
    return items.map((i) => i.id);
  } catch {
    const gone: number[] = [];
    for (const item of items) {
      try {
        await blobs.delete(item.key, item.handle);
        gone.push(item.id);
      } catch {
        // Stays queued; the claim lapses and a later run retries it.
      }
    }
    return gone;
  }
}

/** Due entries (for dry runs). */
export async function countDueBlobDeletions(db: Executor, now: Date): Promise<number> {
  return db.$count(blobDeletions, lte(blobDeletions.nextAttemptAt, now));
}
