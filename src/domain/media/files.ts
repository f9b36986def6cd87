// Changes to a file after (or during) its upload: attaching it to a thread or reply, deleting it.
import { eq } from 'drizzle-orm';
import { media, threads } from '../../db/schema';
import type { Executor } from '../../deps';
import { appendEvent, scrubEvents, type StoredEvent } from '../events';
import { AppError } from '../errors';
import { effectiveStatus, findMedia, goneError, resolveAttachment, type MediaRow } from './access';
import { bumpThreads, quotaView, removeMedia } from '../quota';

/**
 * Moves a file to a thread and/or reply of its own orbit (null detaches), keeping thread media
 * counts exact. The threads are locked before the file's row, the order a thread's deletion
 * locks them in (else the two deadlock); the row lock orders completion and deletion.
 */
export async function attachMedia(
  tx: Executor,
  mediaId: string,
  input: { threadId?: string | null; replyId?: string | null },
  now: Date,
): Promise<MediaRow> {
  const seen = usable(await findMedia(tx, mediaId), now);
  let target = await resolveAttachment(tx, seen.groupId, targetOf(seen, input));
  if (seen.threadId) await tx.select({ id: threads.id }).from(threads).where(eq(threads.id, seen.threadId)).for('key share');
  const row = usable(await findMedia(tx, mediaId, true), now);
  // Moved by a concurrent attach in between: resolve against where it is now.
  if (row.threadId !== seen.threadId || row.replyId !== seen.replyId) target = await resolveAttachment(tx, row.groupId, targetOf(row, input));
  const [updated] = await tx.update(media).set({ threadId: target.threadId, replyId: target.replyId }).where(eq(media.id, mediaId)).returning();
  if (row.status === 'complete' && row.threadId !== target.threadId) {
    const counts = new Map<string, number>();
    if (row.threadId) counts.set(row.threadId, -1);
    if (target.threadId) counts.set(target.threadId, 1);
    await bumpThreads(tx, counts);
  }
  return updated!;
}

function usable(row: MediaRow | undefined, now: Date): MediaRow {
  if (!row) throw new AppError('NOT_FOUND', 'No such media.');
  const status = effectiveStatus(row, now);
  if (status === 'aborted') throw new AppError('CONFLICT', 'This upload was aborted.', { status });
  if (status === 'expired' || (status === 'complete' && row.expiresAt && row.expiresAt <= now)) throw goneError();
  return row;
}

/** A field left out keeps its value, except that a reply brings its own thread and a new thread leaves the old reply behind. */
function targetOf(row: MediaRow, input: { threadId?: string | null; replyId?: string | null }) {
  const threadId = input.threadId !== undefined ? input.threadId : input.replyId ? null : row.threadId;
  const replyId = input.replyId !== undefined ? input.replyId : threadId === row.threadId ? row.replyId : null;
  return { threadId, replyId };
}

/**
 * Deletes a file (or an upload) at once: row, quota and thread count in this transaction, the
 * blob through the durable queue. A completed file's earlier events are scrubbed and
 * media_deleted carries the quota after.
 */
export async function deleteMedia(tx: Executor, row: MediaRow, actorId: string, now: Date): Promise<StoredEvent[]> {
  const { removed, quotas } = await removeMedia(tx, eq(media.id, row.id), now);
  const gone = removed[0];
  if (!gone) throw new AppError('NOT_FOUND', 'No such media.');
  if (gone.status !== 'complete') return [];
  await scrubEvents(tx, row.groupId, { subjectIds: [row.id] });
  const quota = quotas.get(row.groupId);
  return [
    await appendEvent(tx, {
      groupId: row.groupId,
      type: 'media_deleted',
      actorId,
      at: now,
      subjectId: row.id,
      threadId: gone.threadId,
      data: { id: row.id, thread_id: gone.threadId, reply_id: row.replyId, quota: quota ? quotaView(quota) : null },
    }),
  ];
}
