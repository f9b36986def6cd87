// Threads: the orbit's top-level posts. A thread takes the orbit's next seq when created; its
// last_activity_seq moves with each reply. Views are per caller (read marker, unread count), and
// a list page is one query: author, read marker and unread count are joined in.
import { and, desc, eq, inArray, lt, or, sql, type Placeholder, type SQL } from 'drizzle-orm';
import { groupMembers, groupQuotas, groups, media, readMarkers, replies, threads, users } from '../db/schema';
import type { Executor } from '../deps';
import { statement, type Statement } from '../db/statement';
import { AppError } from './errors';
import { appendEvent, recordEvent, scrubEvents, type StoredEvent } from './events';
import { checkEpoch, requireMember, type Membership } from './groups';
import { quotaView, removeMedia } from './quota';
import { enterAppend, enterWrite, holdsCurrentKey, notFoundAs } from './writer';

export interface ThreadView {
  id: string;
  group_id: string;
  author_id: string | null;
  author_username: string | null;
  key_epoch: number;
  encrypted_title: string;
  encrypted_body: string;
  reply_count: number;
  media_count: number;
  last_activity_at: string;
  last_activity_seq: number;
  last_read_seq: number;
  unread_count: number;
  created_at: string;
  seq: number;
}

export type ThreadSort = 'created' | 'activity';

const noSuchThread = () => new AppError('NOT_FOUND', 'No such thread.');

const threadId = sql.placeholder('thread');
const threadOwner = { groupId: threads.groupId, authorId: threads.authorId };
const findStatement = statement<{ groupId: string; authorId: string | null }>((db) => db.select(threadOwner).from(threads).where(eq(threads.id, threadId)), threadOwner);
const lockStatement = statement<{ groupId: string; authorId: string | null }>(
  (db) => db.select(threadOwner).from(threads).where(eq(threads.id, threadId)).for('update'),
  threadOwner,
);

/** A thread's orbit and author (404 when there is none). Locking it orders a reply against the thread's deletion. */
export async function findThread(db: Executor, id: string, lock = false): Promise<{ groupId: string; authorId: string | null }> {
  const [thread] = await (lock ? lockStatement : findStatement).run(db, { thread: id });
  if (!thread) throw noSuchThread();
  return thread;
}

/** A thread of an orbit the caller is not in does not exist for them. */
export const asThreadError = notFoundAs('No such thread.');

/** The caller's membership in the thread's orbit, for reading. */
export async function requireThreadMember(db: Executor, threadId: string, userId: string): Promise<{ groupId: string; authorId: string | null; member: Membership }> {
  const thread = await findThread(db, threadId);
  const member = await requireMember(db, thread.groupId, userId).catch(asThreadError);
  return { ...thread, member };
}

/** Locks the thread, then passes the orbit's write gate (writer.ts). */
export async function lockThreadForWrite(tx: Executor, threadId: string, userId: string): Promise<{ groupId: string; authorId: string | null; member: Membership }> {
  const thread = await findThread(tx, threadId, true);
  const member = await enterWrite(tx, thread.groupId, userId).catch(asThreadError);
  return { ...thread, member };
}

/** Authors delete their own records; the owner deletes anything in the orbit. */
export function requireAuthorOrOwner(member: Membership, authorId: string | null): void {
  if (authorId !== member.userId && member.role !== 'owner') {
    throw new AppError('FORBIDDEN', 'Only the author or the orbit owner can delete this.');
  }
}

/** What every thread view selects: one row per thread, everything the caller sees. */
function threadSelection(viewerId: Param<string>) {
  return {
    id: threads.id,
    groupId: threads.groupId,
    authorId: threads.authorId,
    authorUsername: users.username,
    keyEpoch: threads.keyEpoch,
    encryptedTitle: threads.encryptedTitle,
    encryptedBody: threads.encryptedBody,
    replyCount: threads.replyCount,
    mediaCount: threads.mediaCount,
    lastActivityAt: threads.lastActivityAt,
    lastActivitySeq: threads.lastActivitySeq,
    lastReadSeq: readMarkers.lastReadSeq,
    // The caller's own replies are never unread to them.
    unreadCount: sql<number>`(select count(*) from ${replies} where ${replies.threadId} = ${threads.id} and ${replies.seq} > coalesce(${readMarkers.lastReadSeq}, 0) and not ${replies.deleted} and ${replies.authorId} is distinct from ${viewerId})`.mapWith(
      Number,
    ),
    createdAt: threads.createdAt,
    seq: threads.seq,
  };
}

/** The select every thread view comes from. */
function threadQuery(db: Executor, viewerId: Param<string>, selection = threadSelection(viewerId)) {
  return db
    .select(selection)
    .from(threads)
    .leftJoin(users, eq(users.id, threads.authorId))
    .leftJoin(readMarkers, and(eq(readMarkers.threadId, threads.id), eq(readMarkers.userId, viewerId)));
}

type ThreadRow = Awaited<ReturnType<typeof threadQuery>>[number];

function toView(r: ThreadRow): ThreadView {
  return {
    id: r.id,
    group_id: r.groupId,
    author_id: r.authorId,
    author_username: r.authorUsername ?? null,
    key_epoch: r.keyEpoch,
    encrypted_title: r.encryptedTitle,
    encrypted_body: r.encryptedBody,
    reply_count: r.replyCount,
    media_count: r.mediaCount,
    last_activity_at: r.lastActivityAt.toISOString(),
    last_activity_seq: r.lastActivitySeq,
    last_read_seq: r.lastReadSeq ?? 0,
    unread_count: r.unreadCount,
    created_at: r.createdAt.toISOString(),
    seq: r.seq,
  };
}

const isMember = (groupId: SQL | Param<string>, userId: Param<string>) =>
  sql`exists (select 1 from ${groupMembers} where ${groupMembers.groupId} = ${groupId} and ${groupMembers.userId} = ${userId})`;

const viewer = sql.placeholder('viewer');
const oneThreadSelection = threadSelection(viewer);
const oneThread = statement<ThreadRow>(
  (db) => threadQuery(db, viewer, oneThreadSelection).where(and(eq(threads.id, threadId), isMember(sql`${threads.groupId}`, viewer))).limit(1),
  oneThreadSelection,
);

/** One thread as the caller sees it; 404 when it does not exist or is in an orbit they are not in. */
export async function getThread(db: Executor, id: string, viewerId: string): Promise<ThreadView> {
  const [row] = await oneThread.run(db, { thread: id, viewer: viewerId });
  if (!row) throw noSuchThread();
  return toView(row);
}

/**
 * A page of an orbit's threads, newest first (by seq) or by last activity. The membership check
 * rides along in the same query; only an empty page needs a second look to tell "no threads"
 * from "not your orbit".
 */
export async function listThreads(db: Executor, input: ThreadPageInput): Promise<ThreadView[]> {
  const rows = await preparedPage(input.sort, input.before !== undefined).run(db, {
    group: input.groupId,
    viewer: input.viewerId,
    before: input.before,
    limit: input.limit + 1,
  });
  if (!rows.length) await requireMember(db, input.groupId, input.viewerId);
  return rows.map(toView);
}

export interface ThreadPageInput {
  groupId: string;
  viewerId: string;
  sort: ThreadSort;
  before?: number;
  limit: number;
}

type Param<T> = T | Placeholder;

/** The one query behind a page of threads (limit + 1 rows), exported for the benchmark's baselines. */
export function threadPageQuery(
  db: Executor,
  input: { groupId: Param<string>; viewerId: Param<string>; sort: ThreadSort; before?: Param<number>; limit: Param<number> },
  selection = threadSelection(input.viewerId),
) {
  const key = input.sort === 'activity' ? threads.lastActivitySeq : threads.seq;
  return threadQuery(db, input.viewerId, selection)
    .where(and(eq(threads.groupId, input.groupId), input.before === undefined ? undefined : lt(key, input.before), isMember(input.groupId, input.viewerId)))
    .orderBy(desc(key))
    .limit(input.limit);
}

// The hot read path: one statement per shape (sort, first page or not), built once.
const pageStatements = new Map<string, Statement<ThreadRow>>();

function preparedPage(sort: ThreadSort, withCursor: boolean) {
  const shape = `${sort}:${withCursor}`;
  let page = pageStatements.get(shape);
  if (!page) {
    const selection = threadSelection(viewer);
    const input = { groupId: sql.placeholder('group'), viewerId: viewer, sort, before: withCursor ? sql.placeholder('before') : undefined, limit: sql.placeholder('limit') };
    pageStatements.set(shape, (page = statement<ThreadRow>((db) => threadPageQuery(db, input, selection), selection)));
  }
  return page;
}

const newThreadId = { id: threads.id };
const insertThread = statement<{ id: string }>(
  (db) =>
    db
      .insert(threads)
      .values({
        groupId: sql.placeholder('group'),
        authorId: sql.placeholder('author'),
        keyEpoch: sql.placeholder('epoch'),
        encryptedTitle: sql.placeholder('title'),
        encryptedBody: sql.placeholder('body'),
        lastActivityAt: sql.placeholder('now'),
        lastActivitySeq: sql.placeholder('seq'),
        createdAt: sql.placeholder('now'),
        seq: sql.placeholder('seq'),
      })
      .returning(newThreadId),
  newThreadId,
);

export async function createThread(
  tx: Executor,
  input: { groupId: string; userId: string; keyEpoch: number; encryptedTitle: string; encryptedBody: string; now: Date },
): Promise<{ thread: ThreadView; event: StoredEvent }> {
  const { member, seq } = await enterAppend(tx, input.groupId, input.userId);
  checkEpoch(member, input.keyEpoch);
  const [row] = await insertThread.run(tx, {
    group: input.groupId,
    author: input.userId,
    epoch: input.keyEpoch,
    title: input.encryptedTitle,
    body: input.encryptedBody,
    now: input.now,
    seq,
  });
  const thread = await getThread(tx, row!.id, input.userId);
  const event = await recordEvent(tx, seq, {
    groupId: input.groupId,
    type: 'thread_created',
    actorId: input.userId,
    at: input.now,
    subjectId: thread.id,
    threadId: thread.id,
    // Read state is per viewer: the event carries the thread as it is for someone who has read nothing.
    data: { ...thread, last_read_seq: 0, unread_count: 0 },
  });
  return { thread, event };
}

/**
 * Moves the caller's read marker forward (never back, never past the orbit's last seq) in one
 * statement that checks the caller may write. Markers are no events and removal leaves them
 * alone, so the statement's snapshot is order enough against a removal. The thread row is
 * locked (key share) so a deletion committing meanwhile drops it from the select (404) instead
 * of failing the insert's foreign key (500).
 */
export async function markRead(db: Executor, input: { threadId: string; userId: string; seq: number; now: Date }): Promise<void> {
  const mark = async () => {
    const result = await db.execute(sql`
      insert into ${readMarkers} (thread_id, user_id, last_read_seq, updated_at)
      select t.id, ${input.userId}, least(${input.seq}::bigint, g.last_seq), ${input.now}
        from ${threads} t join ${groups} g on g.id = t.group_id
       where t.id = ${input.threadId} and ${holdsCurrentKey(sql`t.group_id`, input.userId)}
       for key share of t
      on conflict (thread_id, user_id) do update
         set last_read_seq = greatest(${readMarkers}.last_read_seq, excluded.last_read_seq), updated_at = excluded.updated_at
      returning 1 as ok`);
    return (result as unknown as { rows: unknown[] }).rows.length > 0;
  };
  if (await mark()) return;
  // Refused: say why (no such thread for this caller, or a pending key), or retry once when the
  // caller was admitted in the meantime.
  const { member } = await requireThreadMember(db, input.threadId, input.userId);
  if (!member.hasKey || !(await mark())) throw new AppError('KEY_PENDING');
}

/**
 * Deletes a thread with its replies and media (blobs queued, quota released) and scrubs every
 * earlier event about them to `{id, deleted: true}`, all in the caller's transaction.
 */
export async function deleteThread(tx: Executor, input: { threadId: string; userId: string; now: Date }): Promise<StoredEvent[]> {
  const { groupId, authorId, member } = await lockThreadForWrite(tx, input.threadId, input.userId);
  requireAuthorOrOwner(member, authorId);
  const replyIds = tx.select({ id: replies.id }).from(replies).where(eq(replies.threadId, input.threadId));
  const { removed, quotas } = await removeMedia(tx, or(eq(media.threadId, input.threadId), inArray(media.replyId, replyIds))!, input.now);
  await tx.delete(replies).where(eq(replies.threadId, input.threadId));
  await tx.delete(threads).where(eq(threads.id, input.threadId));
  await scrubEvents(tx, groupId, { threadId: input.threadId, subjectIds: removed.map((m) => m.id) });
  const quota = quotas.get(groupId);
  const event = await appendEvent(tx, {
    groupId,
    type: 'thread_deleted',
    actorId: input.userId,
    at: input.now,
    subjectId: input.threadId,
    data: { id: input.threadId, ...mediaGone(removed, quota) },
  });
  return [event];
}

/** What a deletion took with it: the media ids and the orbit's quota after (only when media went). */
export function mediaGone(removed: Array<{ id: string }>, quota: typeof groupQuotas.$inferSelect | undefined) {
  if (!removed.length) return {};
  return { media_ids: removed.map((m) => m.id), ...(quota ? { quota: quotaView(quota) } : {}) };
}
