// Replies: ordered by the orbit seq they were written at, optionally answering another reply of
// the same thread. A deleted reply stays as a tombstone (no body) so the tree keeps its shape;
// reply_count counts the replies that are not deleted.
import { and, asc, desc, eq, gt, lt, sql } from 'drizzle-orm';
import { groupMembers, media, replies, threads, users } from '../db/schema';
import type { Executor } from '../deps';
import { statement } from '../db/statement';
import { AppError } from './errors';
import { appendEvent, recordEvent, scrubEvents, type StoredEvent } from './events';
import { checkEpoch } from './groups';
import { removeMedia } from './quota';
import { asThreadError, findThread, lockThreadForWrite, mediaGone, requireAuthorOrOwner, requireThreadMember } from './threads';
import { enterAppend } from './writer';

export interface ReplyView {
  id: string;
  thread_id: string;
  group_id: string;
  author_id: string | null;
  author_username: string | null;
  key_epoch: number;
  parent_reply_id: string | null;
  encrypted_body: string | null;
  deleted: boolean;
  created_at: string;
  seq: number;
}

const replySelection = {
  id: replies.id,
  threadId: replies.threadId,
  groupId: replies.groupId,
  authorId: replies.authorId,
  authorUsername: users.username,
  keyEpoch: replies.keyEpoch,
  parentReplyId: replies.parentReplyId,
  encryptedBody: replies.encryptedBody,
  deleted: replies.deleted,
  createdAt: replies.createdAt,
  seq: replies.seq,
};

function replyQuery(db: Executor) {
  return db.select(replySelection).from(replies).leftJoin(users, eq(users.id, replies.authorId));
}

type ReplyRow = Awaited<ReturnType<typeof replyQuery>>[number];

function toView(r: ReplyRow): ReplyView {
  return {
    id: r.id,
    thread_id: r.threadId,
    group_id: r.groupId,
    author_id: r.authorId,
    author_username: r.authorUsername ?? null,
    key_epoch: r.keyEpoch,
    parent_reply_id: r.parentReplyId,
    encrypted_body: r.deleted ? null : r.encryptedBody,
    deleted: r.deleted,
    created_at: r.createdAt.toISOString(),
    seq: r.seq,
  };
}

const noSuchReply = () => new AppError('NOT_FOUND', 'No such reply.');

const oneReply = statement<ReplyRow>(
  (db) =>
    replyQuery(db)
      .where(
        and(
          eq(replies.id, sql.placeholder('reply')),
          sql`exists (select 1 from ${groupMembers} where ${groupMembers.groupId} = ${replies.groupId} and ${groupMembers.userId} = ${sql.placeholder('viewer')})`,
        ),
      )
      .limit(1),
  replySelection,
);

/** One reply; 404 unless the caller is a member of its orbit. */
export async function getReply(db: Executor, replyId: string, viewerId: string): Promise<ReplyView> {
  const [row] = await oneReply.run(db, { reply: replyId, viewer: viewerId });
  if (!row) throw noSuchReply();
  return toView(row);
}

/** A page of a thread's replies after (or, newest first, before) a seq. */
export async function listReplies(
  db: Executor,
  input: { threadId: string; viewerId: string; order: 'asc' | 'desc'; cursor?: number; limit: number },
): Promise<ReplyView[]> {
  await requireThreadMember(db, input.threadId, input.viewerId);
  const after = input.cursor === undefined ? undefined : input.order === 'asc' ? gt(replies.seq, input.cursor) : lt(replies.seq, input.cursor);
  const rows = await replyQuery(db)
    .where(and(eq(replies.threadId, input.threadId), after))
    .orderBy(input.order === 'asc' ? asc(replies.seq) : desc(replies.seq))
    .limit(input.limit + 1);
  return rows.map(toView);
}

const newReplyId = { id: replies.id };
// A reply's statements, built once (src/db/statement.ts).
const insertReply = statement<{ id: string }>(
  (db) =>
    db
      .insert(replies)
      .values({
        threadId: sql.placeholder('thread'),
        groupId: sql.placeholder('group'),
        authorId: sql.placeholder('author'),
        keyEpoch: sql.placeholder('epoch'),
        parentReplyId: sql.placeholder('parent'),
        encryptedBody: sql.placeholder('body'),
        createdAt: sql.placeholder('now'),
        seq: sql.placeholder('seq'),
      })
      .returning(newReplyId),
  newReplyId,
);
const bumpThread = statement<unknown>((db) =>
  db
    .update(threads)
    // set() takes placeholders (encoded by the column when run) though its type does not say so.
    .set({ replyCount: sql`${threads.replyCount} + 1`, lastActivityAt: sql.placeholder('now') as unknown as Date, lastActivitySeq: sql.placeholder('seq') as unknown as number })
    .where(eq(threads.id, sql.placeholder('thread'))),
);

export async function createReply(
  tx: Executor,
  input: { threadId: string; userId: string; keyEpoch: number; encryptedBody: string; parentReplyId?: string; now: Date },
): Promise<{ reply: ReplyView; event: StoredEvent }> {
  const { groupId } = await findThread(tx, input.threadId, true);
  const { member, seq } = await enterAppend(tx, groupId, input.userId).catch(asThreadError);
  checkEpoch(member, input.keyEpoch);
  if (input.parentReplyId) {
    const [parent] = await tx
      .select({ id: replies.id })
      .from(replies)
      .where(and(eq(replies.id, input.parentReplyId), eq(replies.threadId, input.threadId)));
    // Same answer whether the id exists elsewhere or nowhere: nothing about other threads leaks.
    if (!parent) throw new AppError('VALIDATION_ERROR', 'parent_reply_id must be a reply of this thread.', { field: 'parent_reply_id' });
  }
  const [row] = await insertReply.run(tx, {
    thread: input.threadId,
    group: groupId,
    author: input.userId,
    epoch: input.keyEpoch,
    parent: input.parentReplyId ?? null,
    body: input.encryptedBody,
    now: input.now,
    seq,
  });
  await bumpThread.run(tx, { now: input.now, seq, thread: input.threadId });
  const reply = await getReply(tx, row!.id, input.userId);
  const event = await recordEvent(tx, seq, {
    groupId,
    type: 'reply_created',
    actorId: input.userId,
    at: input.now,
    subjectId: reply.id,
    threadId: input.threadId,
    data: { ...reply },
  });
  return { reply, event };
}

/** Turns a reply into a tombstone: body and media go, its events are scrubbed, the tree holds. */
export async function deleteReply(tx: Executor, input: { replyId: string; userId: string; now: Date }): Promise<StoredEvent[]> {
  const [found] = await tx
    .select({ threadId: replies.threadId, authorId: replies.authorId, deleted: replies.deleted })
    .from(replies)
    .where(eq(replies.id, input.replyId));
  if (!found || found.deleted) throw noSuchReply();
  // Lock the thread (as a new reply does), then re-read the reply under it.
  const { groupId, member } = await lockThreadForWrite(tx, found.threadId, input.userId).catch((err) => {
    throw err instanceof AppError && err.code === 'NOT_FOUND' ? noSuchReply() : err;
  });
  requireAuthorOrOwner(member, found.authorId);
  const [tombstoned] = await tx
    .update(replies)
    .set({ deleted: true, encryptedBody: null })
    .where(and(eq(replies.id, input.replyId), eq(replies.deleted, false)))
    .returning({ id: replies.id });
  if (!tombstoned) throw noSuchReply();
  await tx
    .update(threads)
    .set({ replyCount: sql`greatest(0, ${threads.replyCount} - 1)` })
    .where(eq(threads.id, found.threadId));
  const { removed, quotas } = await removeMedia(tx, eq(media.replyId, input.replyId), input.now);
  await scrubEvents(tx, groupId, { subjectIds: [input.replyId, ...removed.map((m) => m.id)] });
  const event = await appendEvent(tx, {
    groupId,
    type: 'reply_deleted',
    actorId: input.userId,
    at: input.now,
    subjectId: input.replyId,
    threadId: found.threadId,
    data: { id: input.replyId, thread_id: found.threadId, ...mediaGone(removed, quotas.get(groupId)) },
  });
  return [event];
}
