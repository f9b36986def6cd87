// The durable blob-deletion queue. Rows that own a blob are deleted in the same transaction that
// enqueues the blob, so a crash between storage and database never orphans a blob; cleanup (and
// an after-commit nudge) works the queue.
import { and, asc, eq, lte, sql } from 'drizzle-orm';
import { blobDeletions } from '../db/schema';
import type { BlobStore, Executor } from '../deps';

export async function enqueueBlobDeletions(tx: Executor, blobs: Array<{ blobKey: string; uploadHandle: string | null }>, now: Date): Promise<void> {
  if (!blobs.length) return;
  await tx.insert(blobDeletions).values(blobs.map((b) => ({ blobKey: b.blobKey, uploadHandle: b.uploadHandle, createdAt: now, nextAttemptAt: now })));
}

/**
 * Deletes due blobs, up to `limit`. Each entry is claimed by pushing its next attempt into the
 * future (one conditional write), so concurrent workers never both take it; the row goes after
 * the blob is gone. A failure leaves the claim to expire and be retried with backoff.
 */
export async function drainBlobDeletions(db: Executor, blobs: BlobStore, now: Date, limit = 200): Promise<number> {
  const due = await db
    .select({ id: blobDeletions.id })
    .from(blobDeletions)
    .where(lte(blobDeletions.nextAttemptAt, now))
    .orderBy(asc(blobDeletions.nextAttemptAt))
    .limit(limit);
  let done = 0;
  for (const { id } of due) {
    const [claimed] = await db
      .update(blobDeletions)
      .set({
        attempts: sql`${blobDeletions.attempts} + 1`,
        nextAttemptAt: sql`${now}::timestamptz + make_interval(secs => least(3600, 30 * power(2, ${blobDeletions.attempts})))`,
      })
      .where(and(eq(blobDeletions.id, id), lte(blobDeletions.nextAttemptAt, now)))
      .returning({ blobKey: blobDeletions.blobKey, uploadHandle: blobDeletions.uploadHandle });
    if (!claimed) continue;
    try {
      await blobs.delete(claimed.blobKey, claimed.uploadHandle);
    } catch {
      continue;
    }
    await db.delete(blobDeletions).where(eq(blobDeletions.id, id));
    done++;
  }
  return done;
}
