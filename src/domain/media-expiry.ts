// Cleanup's media steps: upload sessions past their deadline expire (reservations released,
// parts queued), completed media past expires_at go (row and quota in one transaction, blob via
// the queue, media_expired with the quota after). Batches are small transactions whose writes
// are conditional, so a crash loses nothing and two runs at once never remove a file twice.
import { and, eq, inArray, lte, sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { groups, media, orbitEvents } from '../db/schema';
import type { Deps, Executor } from '../deps';
import { scrubEvents, type StoredEvent } from './events';
import { expireUploads } from './media-uploads';
import { quotaView, recomputeQuota, removeMedia, type QuotaRow } from './quota';
import { write } from './tx';

type MediaDeps = Pick<Deps, 'db' | 'fanout' | 'defer'>;

export const MEDIA_BATCH = 500;

const uploadsDue = (now: Date) => and(eq(media.status, 'uploading'), lte(media.uploadExpiresAt, now))!;
const mediaDue = (now: Date) => and(eq(media.status, 'complete'), lte(media.expiresAt, now))!;

export async function countExpirable(db: Executor, now: Date) {
  return { uploads: await db.$count(media, uploadsDue(now)), media: await db.$count(media, mediaDue(now)) };
}

/**
 * Takes up to a batch of due rows for this transaction. Rows another run holds are skipped, so
 * runs at once work on disjoint batches instead of queueing (or deadlocking) on each other.
 */
async function claim(tx: Executor, due: SQL, order: SQL | PgColumn): Promise<string[]> {
  const rows = await tx.select({ id: media.id }).from(media).where(due).orderBy(order).limit(MEDIA_BATCH).for('update', { skipLocked: true });
  return rows.map((r) => r.id);
}

/** Expires every upload session past its deadline; returns how many, adding the orbits touched. */
export async function expireStaleUploads(deps: MediaDeps, now: Date, touched: Set<string>): Promise<number> {
  let total = 0;
  for (;;) {
    const closed = await deps.db.transaction(async (tx) => {
      const ids = await claim(tx, uploadsDue(now), media.uploadExpiresAt);
      return ids.length ? expireUploads(tx, inArray(media.id, ids), now) : null;
    });
    if (!closed) return total;
    for (const c of closed) touched.add(c.groupId);
    total += closed.length;
  }
}

/** Removes every completed media past expires_at; returns how many, adding the orbits touched. */
export async function removeExpiredMedia(deps: MediaDeps, now: Date, touched: Set<string>): Promise<number> {
  let total = 0;
  for (;;) {
    const removed = await write(deps, async (tx, outbox) => {
      const ids = await claim(tx, mediaDue(now), media.expiresAt);
      if (!ids.length) return null;
      const { removed, quotas } = await removeMedia(tx, inArray(media.id, ids), now);
      const byGroup = new Map<string, typeof removed>();
      for (const m of removed) byGroup.set(m.groupId, [...(byGroup.get(m.groupId) ?? []), m]);
      // Orbit rows in one order in every transaction: no deadlock between writers.
      for (const groupId of [...byGroup.keys()].sort()) {
        const list = byGroup.get(groupId)!;
        // The upload events carry the file's encrypted metadata: it goes with the file.
        await scrubEvents(tx, groupId, { subjectIds: list.map((m) => m.id) });
        outbox.add(...(await appendExpiredEvents(tx, groupId, list, quotas.get(groupId), now)));
      }
      return removed;
    });
    if (!removed) return total;
    for (const m of removed) touched.add(m.groupId);
    total += removed.length;
  }
}

/**
 * One media_expired event per file, with seqs taken in one write and rows inserted in one
 * statement. Each event carries the quota right after its own file went: the final quota plus
 * the files that went after it.
 */
async function appendExpiredEvents(
  tx: Executor,
  groupId: string,
  list: Array<{ id: string; threadId: string | null; sizeBytes: number }>,
  finalQuota: QuotaRow | undefined,
  now: Date,
): Promise<StoredEvent[]> {
  const [counter] = await tx
    .update(groups)
    .set({ lastSeq: sql`${groups.lastSeq} + ${list.length}` })
    .where(eq(groups.id, groupId))
    .returning({ last: groups.lastSeq });
  if (!counter) return [];
  const first = counter.last - list.length + 1;
  // Walking back from the last file: what the files after each one still used.
  const after = new Array<{ bytes: number; files: number }>(list.length);
  for (let i = list.length - 1, bytes = 0, files = 0; i >= 0; i--) {
    after[i] = { bytes, files };
    bytes += list[i]!.sizeBytes;
    files += 1;
  }
  const events: StoredEvent[] = list.map((m, i) => ({
    groupId,
    seq: first + i,
    type: 'media_expired',
    actorId: null,
    at: now,
    data: {
      id: m.id,
      thread_id: m.threadId,
      quota: finalQuota
        ? quotaView({ ...finalQuota, bytesUsed: finalQuota.bytesUsed + after[i]!.bytes, filesUsed: finalQuota.filesUsed + after[i]!.files })
        : null,
    },
  }));
  await tx.insert(orbitEvents).values(
    events.map((e, i) => ({
      groupId,
      seq: e.seq,
      type: e.type,
      actorId: null,
      at: now,
      data: e.data,
      subjectId: list[i]!.id,
      threadId: list[i]!.threadId,
    })),
  );
  return events;
}

/** Sets each touched orbit's quota from its rows, one short transaction each. */
export async function recomputeQuotas(db: Deps['db'], groupIds: Iterable<string>, now: Date): Promise<number> {
  let n = 0;
  for (const groupId of groupIds) {
    await db.transaction((tx) => recomputeQuota(tx, groupId, now));
    n++;
  }
  return n;
}
