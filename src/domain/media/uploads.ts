// Upload sessions: start (reserve quota), chunks (one multipart part each), complete, abort and
// expiry. Every state change is one conditional write on the media row that only one caller
// wins (uploading → complete | aborted | expired), so complete, abort and cleanup race safely,
// and each moves the quota in the same transaction.
import { and, asc, count, eq, getTableColumns, inArray, lte, min, sql, sum, type SQL } from 'drizzle-orm';
import { statement } from '../../db/statement';
import { groupMembers, media, mediaChunks, users } from '../../db/schema';
import type { Config } from '../../config';
import type { BlobStore, Deps, Executor, StoredPart } from '../../deps';
import { drainBlobDeletions, enqueueBlobDeletions } from '../blob-queue';
import { allocateSeq, recordEvent, type StoredEvent } from '../events';
import { AppError } from '../errors';
import { checkEpoch, requireMember } from '../groups';
import {
  blobKeyOf,
  chunkCountOf,
  effectiveStatus,
  findMedia,
  MAX_OPEN_UPLOADS,
  MAX_RESERVED_FACTOR,
  mediaInfo,
  requireMediaAccess,
  resolveAttachment,
  UPLOAD_IDLE_MS,
  UPLOAD_MAX_MS,
  type MediaRow,
} from './access';
import { adjustQuota, adjustQuotas, bumpThreads, getQuota, quotaView, reserveQuota, type QuotaDelta } from '../quota';
import { write } from '../tx';
import { enterWrite, holdsCurrentKey, notFoundAs, requireKey } from '../writer';

export interface StartInput {
  userId: string;
  groupId: string;
  threadId?: string | null;
  replyId?: string | null;
  keyEpoch: number;
  sizeBytes: number;
  encryptedMetadata: string;
  encryptionIv: string;
  now: Date;
}

/**
 * Opens an upload: checks the caller's open-upload budget (serialized per user by locking the
 * user row), reserves bytes and one file in the orbit's quota in one conditional write, and
 * starts the blob store's multipart upload.
 */
export async function startUpload(tx: Executor, deps: { config: Config; blobs: BlobStore }, input: StartInput): Promise<MediaRow> {
  const { config } = deps;
  const { userId, groupId, sizeBytes, now } = input;
  // The user row first (as key resets and account deletion lock it, before any orbit), then the
  // orbit's write gate, which orders this start against the caller's removal.
  await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('no key update');
  const member = await enterWrite(tx, groupId, userId);
  checkEpoch(member, input.keyEpoch);
  if (sizeBytes > config.MAX_MEDIA_BYTES) {
    throw new AppError('PAYLOAD_TOO_LARGE', `Files may be at most ${config.MAX_MEDIA_BYTES} bytes.`, { field: 'size_bytes', limit: config.MAX_MEDIA_BYTES });
  }
  const target = await resolveAttachment(tx, groupId, input);

  // Sessions past their deadline hold no reservation, even before cleanup gets to them.
  await expireUploads(tx, and(eq(media.groupId, groupId), eq(media.status, 'uploading'), lte(media.uploadExpiresAt, now))!, now);
  const [open] = await tx
    .select({ n: count(), bytes: sum(media.sizeBytes), soonest: min(media.uploadExpiresAt) })
    .from(media)
    .where(and(eq(media.authorId, userId), eq(media.status, 'uploading'), sql`${media.uploadExpiresAt} > ${now}`));
  const openCount = open?.n ?? 0;
  const openBytes = Number(open?.bytes ?? 0);
  const maxReserved = MAX_RESERVED_FACTOR * config.MAX_MEDIA_BYTES;
  if (openCount >= MAX_OPEN_UPLOADS || openBytes + sizeBytes > maxReserved) {
    const retryAfter = Math.max(1, Math.ceil(((open?.soonest ?? now).getTime() - now.getTime()) / 1000));
    throw new AppError(
      'RATE_LIMITED',
      'Too many open uploads: finish or abort one first.',
      { open_uploads: openCount, max_open_uploads: MAX_OPEN_UPLOADS, reserved_bytes: openBytes, max_reserved_bytes: maxReserved, retry_after: retryAfter },
      retryAfter,
    );
  }

  const quota = await reserveQuota(tx, groupId, sizeBytes, now);
  if (!quota) {
    const current = await getQuota(tx, groupId);
    throw new AppError('QUOTA_EXCEEDED', undefined, { size_bytes: sizeBytes, quota: current ? quotaView(current) : null });
  }

  const id = crypto.randomUUID();
  const blobKey = blobKeyOf(groupId, id);
  const uploadHandle = await deps.blobs.createUpload(blobKey);
  const [row] = await tx
    .insert(media)
    .values({
      id,
      groupId,
      threadId: target.threadId,
      replyId: target.replyId,
      authorId: userId,
      keyEpoch: input.keyEpoch,
      encryptedMetadata: input.encryptedMetadata,
      encryptionIv: input.encryptionIv,
      sizeBytes,
      chunkCount: chunkCountOf(sizeBytes, config.chunkSize),
      status: 'uploading',
      blobKey,
      uploadHandle,
      createdAt: now,
      lastChunkAt: now,
      uploadExpiresAt: uploadDeadline(now, now),
    })
    .returning();
  return row!;
}

/** min(created + 24 h, last chunk + 1 h). */
export const uploadDeadline = (createdAt: Date, lastChunkAt: Date) =>
  new Date(Math.min(createdAt.getTime() + UPLOAD_MAX_MS, lastChunkAt.getTime() + UPLOAD_IDLE_MS));

export async function receivedChunks(db: Executor, mediaId: string): Promise<Array<{ index: number; etag: string; sizeBytes: number }>> {
  return db
    .select({ index: mediaChunks.index, etag: mediaChunks.etag, sizeBytes: mediaChunks.sizeBytes })
    .from(mediaChunks)
    .where(eq(mediaChunks.mediaId, mediaId))
    .orderBy(asc(mediaChunks.index));
}

export function missingOf(chunkCount: number, received: number[]): number[] {
  const have = new Set(received);
  const missing: number[] = [];
  for (let i = 0; i < chunkCount; i++) if (!have.has(i)) missing.push(i);
  return missing;
}

export interface UploadStatus {
  media_id: string;
  group_id: string;
  chunk_size: number;
  chunk_count: number;
  size_bytes: number;
  received: number[];
  missing: number[];
  status: MediaRow['status'];
  upload_expires_at: string;
}

export async function uploadStatus(db: Executor, row: MediaRow, chunkSize: number, now: Date): Promise<UploadStatus> {
  const received = row.status === 'complete' ? [...Array(row.chunkCount).keys()] : (await receivedChunks(db, row.id)).map((c) => c.index);
  return {
    media_id: row.id,
    group_id: row.groupId,
    chunk_size: chunkSize,
    chunk_count: row.chunkCount,
    size_bytes: row.sizeBytes,
    received,
    missing: missingOf(row.chunkCount, received),
    status: effectiveStatus(row, now),
    upload_expires_at: row.uploadExpiresAt.toISOString(),
  };
}

/** The caller's open uploads, with what a client needs to resume (or abort) after losing its state. */
export async function listOpenUploads(db: Executor, userId: string, chunkSize: number, now: Date) {
  const rows = await db
    .select()
    .from(media)
    .where(and(eq(media.authorId, userId), eq(media.status, 'uploading'), sql`${media.uploadExpiresAt} > ${now}`))
    .orderBy(asc(media.createdAt), asc(media.id));
  const chunks = rows.length
    ? await db.select({ mediaId: mediaChunks.mediaId, index: mediaChunks.index }).from(mediaChunks).where(inArray(mediaChunks.mediaId, rows.map((r) => r.id)))
    : [];
  return rows.map((row) => {
    const received = chunks.filter((c) => c.mediaId === row.id).map((c) => c.index).sort((a, b) => a - b);
    return {
      media_id: row.id,
      group_id: row.groupId,
      thread_id: row.threadId,
      reply_id: row.replyId,
      key_epoch: row.keyEpoch,
      encrypted_metadata: row.encryptedMetadata,
      encryption_iv: row.encryptionIv,
      size_bytes: row.sizeBytes,
      chunk_size: chunkSize,
      chunk_count: row.chunkCount,
      received,
      missing: missingOf(row.chunkCount, received),
      status: 'uploading' as const,
      created_at: row.createdAt.toISOString(),
      upload_expires_at: row.uploadExpiresAt.toISOString(),
    };
  });
}

/** Refuses work on a session that can no longer take chunks: 409 after complete or abort, 410 after expiry. */
export function assertUploading(row: MediaRow, now: Date): void {
  const status = effectiveStatus(row, now);
  if (status === 'complete') throw new AppError('CONFLICT', 'This upload is already complete.', { status });
  if (status === 'aborted') throw new AppError('CONFLICT', 'This upload was aborted.', { status });
  if (status === 'expired') throw new AppError('GONE', 'This upload has expired; start a new one.', { status });
}

// The chunk PUT runs these two statements per 5 MiB part: built once (db/statement.ts), as the
// create path's are, not rendered by drizzle on every chunk.
const chunkTargetSelection = {
  ...getTableColumns(media),
  // The outer columns are qualified by hand: a one-table select renders its columns bare, and a
  // bare "group_id" inside the subquery names group_members' own column (any membership matched).
  member: sql<boolean>`exists (select 1 from ${groupMembers} where ${groupMembers.groupId} = ${media}.group_id and ${groupMembers.userId} = ${sql.placeholder('user')})`.mapWith(Boolean),
  hasKey: holdsCurrentKey(sql`${media}.group_id`, sql.placeholder('user')).mapWith(Boolean),
  stored: sql<boolean>`exists (select 1 from ${mediaChunks} where ${mediaChunks.mediaId} = ${media}.id and ${mediaChunks.index} = ${sql.placeholder('index')})`.mapWith(Boolean),
};
type ChunkTargetRow = MediaRow & { member: boolean; hasKey: boolean; stored: boolean };
const chunkTargetStatement = statement<ChunkTargetRow>(
  (db) => db.select(chunkTargetSelection).from(media).where(eq(media.id, sql.placeholder('media'))),
  chunkTargetSelection,
);

/**
 * The upload a chunk is for, in one query: the row, whether the caller may send it (404 for a
 * non-member, 403 for another member) and whether this index is already stored.
 */
export async function chunkTarget(db: Executor, mediaId: string, userId: string, index: number): Promise<{ row: MediaRow; stored: boolean }> {
  const [hit] = await chunkTargetStatement.run(db, { media: mediaId, user: userId, index });
  // Not there: the ordinary lookup says whether it expired (410) or never existed for this caller.
  if (!hit) await requireMediaAccess(db, mediaId, userId);
  if (!hit || !hit.member) throw new AppError('NOT_FOUND', 'No such upload.');
  const { member: _member, hasKey, stored, ...row } = hit;
  if (row.authorId !== userId) throw new AppError('FORBIDDEN', 'Only the uploader can do this.');
  if (!hasKey) throw new AppError('KEY_PENDING');
  return { row, stored };
}

const recordChunkStatement = statement<{ open: number; before: number; added: boolean }>((db) => {
  const [id, now, index] = [sql.placeholder('media'), sql.placeholder('now'), sql.placeholder('index')];
  return sql`
    with open as (
      update ${media}
         set last_chunk_at = ${now}, upload_expires_at = least(${media.createdAt} + interval '24 hours', ${now}::timestamptz + interval '1 hour')
       where ${media.id} = ${id} and ${media.status} = 'uploading' and ${media.uploadExpiresAt} > ${now}
         and ${holdsCurrentKey(sql`${media}.group_id`, sql.placeholder('user'))}
      returning ${media.id}
    ), stored as (
      insert into ${mediaChunks} (media_id, index, size_bytes, etag, received_at)
      select id, ${index}, ${sql.placeholder('size')}, ${sql.placeholder('etag')}, ${now} from open
      on conflict (media_id, index) do update set etag = excluded.etag, size_bytes = excluded.size_bytes, received_at = excluded.received_at
      returning (xmax = 0) as added
    )
    select (select count(*) from open)::int as open,
           (select count(*) from ${mediaChunks} where ${mediaChunks.mediaId} = ${id})::int as before,
           coalesce((select bool_or(added) from stored), false) as added`;
});

/**
 * Counts a stored chunk in one statement: the session stays open (deadline pushed out) only
 * while it is still uploading and its uploader may still write — complete, abort, expiry and the
 * uploader's removal lock the same row — and the chunk row is upserted so the latest accepted
 * copy of a part is the one completion names. Returns how many chunks the upload holds now.
 */
export async function recordChunk(db: Executor, row: MediaRow, userId: string, index: number, part: StoredPart, now: Date): Promise<number> {
  const [counts] = await recordChunkStatement.run(db, { media: row.id, now, user: userId, index, size: part.size, etag: part.etag });
  if (!counts || Number(counts.open) === 0) {
    const [current] = await db.select().from(media).where(eq(media.id, row.id));
    if (!current) throw new AppError('NOT_FOUND', 'No such upload.');
    assertUploading(current, now);
    requireKey(await requireMember(db, row.groupId, userId).catch(notFoundAs('No such upload.')));
    throw new AppError('CONFLICT', 'This upload changed; retry.');
  }
  // The count's snapshot predates this statement's own insert.
  return Number(counts.before) + (counts.added ? 1 : 0);
}

/**
 * After a chunk failed to store or to count: when abort, completion or expiry closed the upload
 * meanwhile, answers as its state says (409/410), not with the store's error. For an aborted or
 * expired upload the blob is queued again, as the closing deletion may have run before the part
 * landed. Returns when the upload is still open (the caller rethrows its own error).
 */
export async function refuseIfClosed(deps: Pick<Deps, 'db' | 'blobs'>, mediaId: string, now: Date): Promise<void> {
  const current = await findMedia(deps.db, mediaId);
  if (!current) throw new AppError('NOT_FOUND', 'No such upload.');
  if (current.status === 'aborted' || current.status === 'expired') {
    await enqueueBlobDeletions(deps.db, [current], now);
    await drainBlobDeletions(deps.db, deps.blobs, now, { keys: [current.blobKey] }).catch(() => 0);
  }
  assertUploading(current, now);
}

export interface Completed {
  /** 201 for the call that completed it, 200 for a repeat. */
  status: 200 | 201;
  row: MediaRow;
}

/**
 * Completes an upload: every chunk present (else 409 UPLOAD_INCOMPLETE with the missing
 * indexes), the blob store assembles the parts, then one conditional write turns the session into
 * media, its reservation into usage, takes the orbit's seq and emits media_uploaded.
 */
export async function completeUpload(deps: Pick<Deps, 'db' | 'blobs' | 'config' | 'fanout' | 'defer'>, row: MediaRow, actorId: string, now: Date): Promise<Completed> {
  if (row.status === 'complete') return { status: 200, row };
  assertUploading(row, now);
  const chunks = await receivedChunks(deps.db, row.id);
  const missing = missingOf(row.chunkCount, chunks.map((c) => c.index));
  if (missing.length) {
    throw new AppError('UPLOAD_INCOMPLETE', `${missing.length} of ${row.chunkCount} chunks are missing.`, {
      missing: missing.slice(0, 1000),
      missing_count: missing.length,
    });
  }
  try {
    await deps.blobs.completeUpload(
      row.blobKey,
      row.uploadHandle,
      chunks.map((c) => ({ index: c.index, etag: c.etag })),
      chunks.map((c) => c.sizeBytes),
    );
  } catch (err) {
    // An abort or expiry that took the parts away first is a 409/410; a completion that won is the repeat's 200.
    const current = await findMedia(deps.db, row.id);
    if (current?.status === 'complete') return { status: 200, row: current };
    await refuseIfClosed(deps, row.id, now);
    throw err;
  }

  return write(deps, async (tx, outbox) => {
    // The write gate first (before the media row), as removal locks the orbit before the uploads.
    await enterWrite(tx, row.groupId, actorId).catch(notFoundAs('No such upload.'));
    const expiresAt = new Date(now.getTime() + deps.config.MEDIA_RETENTION_DAYS * 86_400_000);
    // Locked first and then written once: a second write of a row this transaction already wrote
    // makes Postgres re-check all its foreign keys, and the key-share lock on the uploader's row
    // then deadlocked with the same user's next upload start (which locks that row, then the quota).
    const [current] = await tx.select().from(media).where(eq(media.id, row.id)).for('no key update');
    if (!current) throw new AppError('NOT_FOUND', 'No such upload.');
    if (current.status === 'complete') return { status: 200 as const, row: current };
    assertUploading(current, now);
    const quota = await adjustQuota(tx, row.groupId, { bytesReserved: -row.sizeBytes, filesReserved: -1, bytesUsed: row.sizeBytes, filesUsed: 1 }, now);
    const seq = await allocateSeq(tx, row.groupId);
    const [completed] = await tx
      .update(media)
      // The multipart handle is spent: deleting the object no longer needs it.
      .set({ status: 'complete', uploadedAt: now, expiresAt, uploadHandle: null, seq })
      .where(eq(media.id, row.id))
      .returning();
    const done = completed!;
    if (done.threadId) await bumpThreads(tx, new Map([[done.threadId, 1]]));
    outbox.add(
      await recordEvent(tx, seq, {
        groupId: row.groupId,
        type: 'media_uploaded',
        actorId,
        at: now,
        subjectId: row.id,
        threadId: done.threadId,
        data: { ...mediaInfo(done), quota: quota ? quotaView(quota) : null },
      }),
    );
    return { status: 201 as const, row: done };
  });
}

/**
 * Aborts an open upload in one conditional write: its reservation is released and its parts are
 * queued for deletion. Aborting an aborted or expired upload changes nothing; a completed one is
 * 409 (delete the media instead). Returns the blob keys queued.
 */
export async function abortUpload(tx: Executor, row: MediaRow, now: Date): Promise<string[]> {
  if (row.status === 'complete') throw new AppError('CONFLICT', 'This upload is complete; delete the media instead.', { status: 'complete' });
  const closed = await closeUploads(tx, and(eq(media.id, row.id), eq(media.status, 'uploading'))!, 'aborted', now);
  if (!closed.length) {
    const [current] = await tx.select({ status: media.status }).from(media).where(eq(media.id, row.id));
    if (current?.status === 'complete') throw new AppError('CONFLICT', 'This upload is complete; delete the media instead.', { status: 'complete' });
  }
  return closed.map((r) => r.blobKey);
}

/** Marks open uploads matching `where` as expired, releasing their reservations; returns them. */
export function expireUploads(tx: Executor, where: SQL, now: Date) {
  return closeUploads(tx, where, 'expired', now);
}

async function closeUploads(tx: Executor, where: SQL, status: 'aborted' | 'expired', now: Date) {
  const closed = await tx
    .update(media)
    .set({ status })
    .where(and(where, eq(media.status, 'uploading')))
    .returning({ id: media.id, groupId: media.groupId, sizeBytes: media.sizeBytes, blobKey: media.blobKey, uploadHandle: media.uploadHandle });
  if (!closed.length) return closed;
  await enqueueBlobDeletions(tx, closed, now);
  await tx.delete(mediaChunks).where(inArray(mediaChunks.mediaId, closed.map((c) => c.id)));
  const perGroup = new Map<string, QuotaDelta>();
  for (const c of closed) {
    const d = perGroup.get(c.groupId) ?? { bytesReserved: 0, filesReserved: 0 };
    d.bytesReserved! -= c.sizeBytes;
    d.filesReserved! -= 1;
    perGroup.set(c.groupId, d);
  }
  await adjustQuotas(tx, perGroup, now);
  return closed;
}
