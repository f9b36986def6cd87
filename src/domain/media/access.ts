// Media files: who may see and change them, where they attach, and how they look on the wire.
// A media row is an upload session while `uploading` and a file once `complete`; `aborted` and
// `expired` rows stay a while so late chunks and status checks get a clear answer.
import { and, desc, eq, gt, lt, sql } from 'drizzle-orm';
import { groupMembers, media, mediaDownloads, orbitEvents, replies, threads } from '../../db/schema';
import type { Executor } from '../../deps';
import { AppError } from '../errors';
import { requireMember, type Membership } from '../groups';
import { enterWrite, notFoundAs, requireKey } from '../writer';

export type MediaRow = typeof media.$inferSelect;

/** Last chunk to upload expiry, and first chunk to upload expiry: the two upload deadlines. */
export const UPLOAD_IDLE_MS = 3600_000;
export const UPLOAD_MAX_MS = 24 * 3600_000;
/** Per user: open uploads and bytes they may hold reserved at once (× MAX_MEDIA_BYTES). */
export const MAX_OPEN_UPLOADS = 5;
export const MAX_RESERVED_FACTOR = 2;

export const chunkCountOf = (sizeBytes: number, chunkSize: number) => Math.ceil(sizeBytes / chunkSize);

/** Size of chunk `index`: every chunk but the last is exactly chunk_size bytes. */
export function chunkSizeOf(row: Pick<MediaRow, 'sizeBytes' | 'chunkCount'>, index: number, chunkSize: number): number {
  return index < row.chunkCount - 1 ? chunkSize : row.sizeBytes - chunkSize * (row.chunkCount - 1);
}

export const blobKeyOf = (groupId: string, mediaId: string) => `media/${groupId}/${mediaId}`;

/** An upload whose deadline has passed counts as expired even before cleanup marks it. */
export function effectiveStatus(row: Pick<MediaRow, 'status' | 'uploadExpiresAt'>, now: Date): MediaRow['status'] {
  return row.status === 'uploading' && row.uploadExpiresAt <= now ? 'expired' : row.status;
}

export async function findMedia(db: Executor, mediaId: string, lock = false): Promise<MediaRow | undefined> {
  const query = db.select().from(media).where(eq(media.id, mediaId));
  const [row] = lock ? await query.for('update') : await query;
  return row;
}

export interface MediaAccess {
  row: MediaRow;
  member: Membership;
  isAuthor: boolean;
}

/**
 * The media row and the caller's membership in its orbit; 404 for a non-member (and for an
 * expired file whose row cleanup removed, 410 for members of its orbit).
 */
export async function requireMediaAccess(db: Executor, mediaId: string, userId: string): Promise<MediaAccess> {
  const row = await findMedia(db, mediaId);
  if (!row) {
    if (await wasExpired(db, mediaId, userId)) throw goneError();
    throw new AppError('NOT_FOUND', 'No such media.');
  }
  // Not a member: the media is not theirs to know of. Anything else (the database failing) stays
  // what it is: a client told "No such media" would drop a file or an upload that exists.
  const member = await requireMember(db, row.groupId, userId).catch((err: unknown) => {
    throw err instanceof AppError ? new AppError('NOT_FOUND', 'No such media.') : err;
  });
  return { row, member, isAuthor: row.authorId === userId };
}

export type MediaActor = 'uploader' | 'uploader or owner';

function requireActor(access: MediaAccess, who: MediaActor): MediaAccess {
  if (!access.isAuthor && (who === 'uploader' || access.member.role !== 'owner')) {
    throw new AppError('FORBIDDEN', who === 'uploader' ? 'Only the uploader can do this.' : 'Only the uploader or the orbit owner can do this.');
  }
  return access;
}

/** The uploader (an upload session belongs to whoever started it). */
export async function requireUploader(db: Executor, mediaId: string, userId: string): Promise<MediaAccess> {
  return requireActor(await requireMediaAccess(db, mediaId, userId), 'uploader');
}

/**
 * For changing a file or an upload: the caller passes the orbit's write gate (writer.ts), so the
 * change is ordered against their removal, and must hold the current key (403 KEY_PENDING, after
 * the role check: a member who may not do this at all is told so first).
 */
export async function requireMediaWriter(tx: Executor, mediaId: string, userId: string, who: MediaActor): Promise<MediaAccess> {
  const row = await findMedia(tx, mediaId);
  if (!row) return requireMediaAccess(tx, mediaId, userId);
  const member = await enterWrite(tx, row.groupId, userId, { pending: true }).catch(notFoundAs('No such media.'));
  const access = requireActor({ row, member, isAuthor: row.authorId === userId }, who);
  requireKey(member);
  return access;
}

export const goneError = () => new AppError('GONE', 'This media has expired and is no longer available.');

/** A completed, unexpired file; 410 once past expires_at, 404 while still an upload (or aborted). */
export function requireAvailable(row: MediaRow, now: Date): MediaRow & { expiresAt: Date; uploadedAt: Date } {
  if (row.status !== 'complete' || !row.expiresAt || !row.uploadedAt) throw new AppError('NOT_FOUND', 'This media has not been uploaded.');
  if (row.expiresAt <= now) throw goneError();
  return row as MediaRow & { expiresAt: Date; uploadedAt: Date };
}

/** Whether cleanup removed this media as expired in an orbit the user belongs to (the log keeps that 30 days). */
async function wasExpired(db: Executor, mediaId: string, userId: string): Promise<boolean> {
  const [hit] = await db
    .select({ seq: orbitEvents.seq })
    .from(orbitEvents)
    .innerJoin(groupMembers, and(eq(groupMembers.groupId, orbitEvents.groupId), eq(groupMembers.userId, userId)))
    .where(and(eq(orbitEvents.subjectId, mediaId), eq(orbitEvents.type, 'media_expired')))
    .limit(1);
  return Boolean(hit);
}

/**
 * Checks that a thread and/or reply belong to the orbit (400 otherwise, whether or not they
 * exist) and returns where the media attaches; a reply alone implies its thread. The rows are
 * locked until commit, so a deletion racing the caller either waits (and takes the media with
 * it) or wins (and the check answers 400), never leaving a foreign key to fail.
 */
export async function resolveAttachment(
  db: Executor,
  groupId: string,
  input: { threadId?: string | null; replyId?: string | null },
): Promise<{ threadId: string | null; replyId: string | null }> {
  const invalid = (field: string) => new AppError('VALIDATION_ERROR', `${field} must name a ${field === 'thread_id' ? 'thread' : 'reply'} of this orbit.`, { field });
  let threadId = input.threadId ?? null;
  const replyId = input.replyId ?? null;
  const liveReply = (id: string) => and(eq(replies.id, id), eq(replies.groupId, groupId), eq(replies.deleted, false));
  const lockThread = async (id: string) =>
    (await db.select({ id: threads.id }).from(threads).where(and(eq(threads.id, id), eq(threads.groupId, groupId))).for('key share')).length > 0;
  if (replyId) {
    const [reply] = await db.select({ threadId: replies.threadId }).from(replies).where(liveReply(replyId));
    if (!reply || (threadId && reply.threadId !== threadId)) throw invalid('reply_id');
    threadId = reply.threadId;
    // The thread before the reply: the order deletions lock them in.
    const held = (await lockThread(threadId)) && (await db.select({ id: replies.id }).from(replies).where(liveReply(replyId)).for('share')).length > 0;
    if (!held) throw invalid('reply_id');
  } else if (threadId && !(await lockThread(threadId))) {
    throw invalid('thread_id');
  }
  return { threadId, replyId };
}

export interface MediaInfo {
  id: string;
  group_id: string;
  thread_id: string | null;
  reply_id: string | null;
  author_id: string | null;
  key_epoch: number;
  encrypted_metadata: string;
  encryption_iv: string;
  size_bytes: number;
  /** Null while the file is still an upload. */
  uploaded_at: string | null;
  expires_at: string | null;
}

export function mediaInfo(row: MediaRow): MediaInfo {
  return {
    id: row.id,
    group_id: row.groupId,
    thread_id: row.threadId,
    reply_id: row.replyId,
    author_id: row.authorId,
    key_epoch: row.keyEpoch,
    encrypted_metadata: row.encryptedMetadata,
    encryption_iv: row.encryptionIv,
    size_bytes: row.sizeBytes,
    uploaded_at: row.uploadedAt?.toISOString() ?? null,
    expires_at: row.expiresAt?.toISOString() ?? null,
  };
}

export async function downloadedBy(db: Executor, mediaId: string, userId: string): Promise<boolean> {
  const [row] = await db
    .select({ at: mediaDownloads.downloadedAt })
    .from(mediaDownloads)
    .where(and(eq(mediaDownloads.mediaId, mediaId), eq(mediaDownloads.userId, userId)));
  return Boolean(row);
}

export async function mediaInfoFor(db: Executor, row: MediaRow, viewerId: string) {
  return { ...mediaInfo(row), downloaded_by_me: await downloadedBy(db, row.id, viewerId) };
}

/** One record per (user, media), kept with the first download's time. */
export async function recordDownload(db: Executor, mediaId: string, userId: string, now: Date): Promise<void> {
  await db.insert(mediaDownloads).values({ mediaId, userId, downloadedAt: now }).onConflictDoNothing();
}

/** An orbit's completed, unexpired media, newest first, by seq (keyset). */
export async function listGroupMedia(db: Executor, groupId: string, viewerId: string, now: Date, limit: number, beforeSeq?: number) {
  const rows = await db
    .select({ row: media, downloaded: sql<boolean>`${mediaDownloads.userId} is not null` })
    .from(media)
    .leftJoin(mediaDownloads, and(eq(mediaDownloads.mediaId, media.id), eq(mediaDownloads.userId, viewerId)))
    .where(
      and(
        eq(media.groupId, groupId),
        eq(media.status, 'complete'),
        gt(media.expiresAt, now),
        beforeSeq === undefined ? undefined : lt(media.seq, beforeSeq),
      ),
    )
    .orderBy(desc(media.seq))
    .limit(limit + 1);
  return rows.map((r) => ({ ...mediaInfo(r.row), downloaded_by_me: Boolean(r.downloaded), seq: r.row.seq ?? 0 }));
}
