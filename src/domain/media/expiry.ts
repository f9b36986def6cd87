// Cleanup's media steps: upload sessions past their deadline expire (reservations released,
// parts queued), completed media past expires_at go (row and quota in one transaction, blob via
// the queue, media_expired with the quota after). Batches are small transactions whose writes
// are conditional, so a crash loses nothing and two runs at once never remove a file twice.
import { and, asc, eq, inArray, lte, sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { groups, media, orbitEvents } from '../../db/schema';
import type { Deps, Executor } from '../../deps';
import type { StoredEvent } from '../events';
import { expireUploads } from './uploads';
import { quotaView, recomputeQuota, removeMedia, type QuotaRow, type QuotaView } from '../quota';
import { write } from '../tx';

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
      // The upload events carry the files' encrypted metadata: it goes with the files.
      await scrubMediaEvents(tx, removed);
      outbox.add(...(await appendExpiredEvents(tx, removed, quotas, now)));
      return removed;
    });
    if (!removed) return total;
    for (const m of removed) touched.add(m.groupId);
    total += removed.length;
  }
}

/** Replaces the content of every event about these files with a tombstone, in one statement. */
async function scrubMediaEvents(tx: Executor, files: Array<{ id: string; groupId: string }>): Promise<void> {
  if (!files.length) return;
  const keys = sql.join(
    files.map((m) => sql`(${m.groupId}::uuid, ${m.id}::uuid)`),
    sql`, `,
  );
  await tx.execute(sql`
    update ${orbitEvents} set data = jsonb_build_object('id', ${orbitEvents.subjectId}, 'deleted', true), private = null
     where (${orbitEvents.groupId}, ${orbitEvents.subjectId}) in (values ${keys})`);
}

/**
 * One media_expired event per file. Each orbit's seqs are taken in one step for all its files
 * (orbit rows locked in id order, counters set in one statement) and the events inserted in one
 * statement. Each event carries the quota right after its own file went: the final quota plus
 * the files of that orbit that went after it.
 */
async function appendExpiredEvents(
  tx: Executor,
  files: Array<{ id: string; groupId: string; threadId: string | null; sizeBytes: number }>,
  finalQuotas: Map<string, QuotaRow>,
  now: Date,
): Promise<StoredEvent[]> {
  const byGroup = new Map<string, typeof files>();
  for (const m of files) byGroup.set(m.groupId, [...(byGroup.get(m.groupId) ?? []), m]);
  if (!byGroup.size) return [];
  const counters = await tx
    .select({ id: groups.id, lastSeq: groups.lastSeq })
    .from(groups)
    .where(inArray(groups.id, [...byGroup.keys()]))
    .orderBy(asc(groups.id))
    .for('no key update');
  const next = counters.map((g) => ({ id: g.id, first: g.lastSeq + 1, last: g.lastSeq + byGroup.get(g.id)!.length }));
  if (!next.length) return [];
  await tx.execute(sql`
    update ${groups} set last_seq = d.last
      from (values ${sql.join(
        next.map((g) => sql`(${g.id}::uuid, ${g.last}::bigint)`),
        sql`, `,
      )}) as d(id, last)
     where ${groups.id} = d.id`);

  const events: Array<StoredEvent & { subjectId: string; threadId: string | null }> = [];
  for (const { id: groupId, first } of next) {
    const list = byGroup.get(groupId)!;
    const finalQuota = finalQuotas.get(groupId);
    // Walking back from the last file: what the files after each one still used.
    let laterBytes = 0;
    let laterFiles = 0;
    const quotas = new Array<QuotaView | null>(list.length);
    for (let i = list.length - 1; i >= 0; i--) {
      quotas[i] = finalQuota ? quotaView({ ...finalQuota, bytesUsed: finalQuota.bytesUsed + laterBytes, filesUsed: finalQuota.filesUsed + laterFiles }) : null;
      laterBytes += list[i]!.sizeBytes;
      laterFiles += 1;
    }
    list.forEach((m, i) =>
      events.push({
        groupId,
        seq: first + i,
        type: 'media_expired',
        actorId: null,
        at: now,
        data: { id: m.id, thread_id: m.threadId, quota: quotas[i] },
        subjectId: m.id,
        threadId: m.threadId,
      }),
    );
  }
  await tx.insert(orbitEvents).values(
    events.map((e) => ({ groupId: e.groupId, seq: e.seq, type: e.type, actorId: null, at: now, data: e.data, subjectId: e.subjectId, threadId: e.threadId })),
  );
  return events.map(({ subjectId: _s, threadId: _t, ...e }) => e);
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
