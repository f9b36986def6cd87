// The orbit event log. Every change in an orbit takes the orbit's next seq from the counter row
// inside the writing transaction (the row lock orders writers; a rollback returns the number),
// so seq is strictly increasing and gap-free per orbit. Fan-out happens after commit.
import { and, asc, eq, gt, inArray, lte, min, sql } from 'drizzle-orm';
import { groups, orbitEvents } from '../db/schema';
import type { Executor } from '../deps';
import { statement } from '../db/statement';

export const EVENT_TYPES = [
  'thread_created',
  'thread_deleted',
  'reply_created',
  'reply_deleted',
  'media_uploaded',
  'media_deleted',
  'media_expired',
  'member_joined',
  'member_left',
  'member_key_delivered',
  'member_key_reset',
  'key_rotated',
  'message_created',
  'group_updated',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface StoredEvent {
  groupId: string;
  seq: number;
  type: EventType;
  actorId: string | null;
  at: Date;
  data: Record<string, unknown>;
  /** Parts of `data` only one member may see, by user id (e.g. an envelope addressed to them). */
  private?: Record<string, Record<string, unknown>> | null;
}

export interface WireEvent {
  type: EventType;
  group_id: string;
  seq: number;
  at: string;
  actor_id: string | null;
  data: Record<string, unknown>;
}

/** Takes the orbit's next seq (and with it the orbit row's lock until commit). */
export async function allocateSeq(tx: Executor, groupId: string): Promise<number> {
  const [row] = await tx
    .update(groups)
    .set({ lastSeq: sql`${groups.lastSeq} + 1` })
    .where(eq(groups.id, groupId))
    .returning({ seq: groups.lastSeq });
  if (!row) throw new Error(`orbit ${groupId} vanished inside its own transaction`);
  return row.seq;
}

export interface NewEvent {
  groupId: string;
  type: EventType;
  actorId: string | null;
  data: Record<string, unknown>;
  private?: Record<string, Record<string, unknown>> | null;
  /** The record the event is about and its thread, so deleting them can scrub the log. */
  subjectId?: string | null;
  threadId?: string | null;
  at?: Date;
}

// Every write appends one: built once (src/db/statement.ts).
const insertEvent = statement<unknown>((db) =>
  db.insert(orbitEvents).values({
    groupId: sql.placeholder('group'),
    seq: sql.placeholder('seq'),
    type: sql.placeholder('type'),
    actorId: sql.placeholder('actor'),
    at: sql.placeholder('at'),
    data: sql.placeholder('data'),
    // Passed as JSON text or null: a column's encoder would turn null into JSON `null`, not SQL NULL.
    private: sql`${sql.placeholder('private')}`,
    subjectId: sql.placeholder('subject'),
    threadId: sql.placeholder('thread'),
  }),
);

/** Appends an event at a seq already taken with allocateSeq (records that carry their seq). */
export async function recordEvent(tx: Executor, seq: number, event: NewEvent): Promise<StoredEvent> {
  const at = event.at ?? new Date();
  await insertEvent.run(tx, {
    group: event.groupId,
    seq,
    type: event.type,
    actor: event.actorId,
    at,
    data: event.data,
    private: event.private ? JSON.stringify(event.private) : null,
    subject: event.subjectId ?? null,
    thread: event.threadId ?? null,
  });
  return { groupId: event.groupId, seq, type: event.type, actorId: event.actorId, at, data: event.data, private: event.private ?? null };
}

/** Takes the next seq and appends the event. */
export async function appendEvent(tx: Executor, event: NewEvent): Promise<StoredEvent> {
  return recordEvent(tx, await allocateSeq(tx, event.groupId), event);
}

/** The event as one member sees it: their private part merged in, other members' parts never. */
export function viewEvent(event: StoredEvent, viewerId: string): WireEvent {
  const own = event.private?.[viewerId];
  return {
    type: event.type,
    group_id: event.groupId,
    seq: event.seq,
    at: event.at.toISOString(),
    actor_id: event.actorId,
    data: own ? { ...event.data, ...own } : event.data,
  };
}

type EventRow = typeof orbitEvents.$inferSelect;

export function eventFromRow(row: Pick<EventRow, 'groupId' | 'seq' | 'type' | 'actorId' | 'at' | 'data' | 'private'>): StoredEvent {
  return {
    groupId: row.groupId,
    seq: row.seq,
    type: row.type as EventType,
    actorId: row.actorId,
    at: row.at,
    data: row.data,
    private: row.private,
  };
}

const eventColumns = {
  groupId: orbitEvents.groupId,
  seq: orbitEvents.seq,
  type: orbitEvents.type,
  actorId: orbitEvents.actorId,
  at: orbitEvents.at,
  data: orbitEvents.data,
  private: orbitEvents.private,
};

/** Events of an orbit after a seq (up to another one), in order: built once (src/db/statement.ts), as every catch-up and reconnect reads them. */
function eventPage(bounded: boolean) {
  return statement<Parameters<typeof eventFromRow>[0]>(
    (db) =>
      db
        .select(eventColumns)
        .from(orbitEvents)
        .where(
          and(
            eq(orbitEvents.groupId, sql.placeholder('group')),
            gt(orbitEvents.seq, sql.placeholder('after')),
            bounded ? lte(orbitEvents.seq, sql.placeholder('upTo')) : undefined,
          ),
        )
        .orderBy(asc(orbitEvents.seq))
        .limit(sql.placeholder('limit')),
    eventColumns,
  );
}
const eventsAfter = eventPage(false);
const eventsBetween = eventPage(true);

/** Events with afterSeq < seq ≤ upToSeq, in order. */
export async function readEvents(db: Executor, groupId: string, afterSeq: number, limit: number, upToSeq?: number): Promise<StoredEvent[]> {
  const values = { group: groupId, after: afterSeq, limit, upTo: upToSeq };
  const rows = await (upToSeq === undefined ? eventsAfter : eventsBetween).run(db, values);
  return rows.map(eventFromRow);
}

/** The oldest seq the log still holds for an orbit (last_seq + 1 when it holds none). */
export async function oldestSeq(db: Executor, groupId: string): Promise<{ oldest: number; last: number }> {
  const [row] = await db
    .select({ oldest: min(orbitEvents.seq), last: groups.lastSeq })
    .from(groups)
    .leftJoin(orbitEvents, eq(orbitEvents.groupId, groups.id))
    .where(eq(groups.id, groupId))
    .groupBy(groups.lastSeq);
  if (!row) return { oldest: 1, last: 0 };
  return { oldest: row.oldest === null ? row.last + 1 : Number(row.oldest), last: row.last };
}

/** Replaces the content of every event about these records with a tombstone. */
export async function scrubEvents(tx: Executor, groupId: string, by: { subjectIds?: string[]; threadId?: string }): Promise<void> {
  const tombstone = sql`jsonb_build_object('id', ${orbitEvents.subjectId}, 'deleted', true)`;
  if (by.threadId) {
    await tx
      .update(orbitEvents)
      .set({ data: tombstone, private: null })
      .where(and(eq(orbitEvents.groupId, groupId), eq(orbitEvents.threadId, by.threadId)));
  }
  if (by.subjectIds?.length) {
    await tx
      .update(orbitEvents)
      .set({ data: tombstone, private: null })
      .where(and(eq(orbitEvents.groupId, groupId), inArray(orbitEvents.subjectId, by.subjectIds)));
  }
}
