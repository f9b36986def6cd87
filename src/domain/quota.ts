// Orbit storage quota: `used` counts completed media, `reserved` counts open uploads. Every change
// is one conditional write on the quota row; media rows are the truth it can be recomputed from.
import { and, asc, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { groupQuotas, media, threads } from '../db/schema';
import type { Executor } from '../deps';
import { enqueueBlobDeletions } from './blob-queue';

export type QuotaRow = typeof groupQuotas.$inferSelect;

export interface QuotaView {
  bytes_used: number;
  bytes_reserved: number;
  bytes_limit: number;
  files_used: number;
  files_reserved: number;
  files_limit: number;
  warning: boolean;
}

export function quotaView(q: QuotaRow): QuotaView {
  return {
    bytes_used: q.bytesUsed,
    bytes_reserved: q.bytesReserved,
    bytes_limit: q.bytesLimit,
    files_used: q.filesUsed,
    files_reserved: q.filesReserved,
    files_limit: q.filesLimit,
    warning: q.bytesUsed + q.bytesReserved >= 0.8 * q.bytesLimit || q.filesUsed + q.filesReserved >= 0.8 * q.filesLimit,
  };
}

export async function getQuota(db: Executor, groupId: string): Promise<QuotaRow | undefined> {
  const [row] = await db.select().from(groupQuotas).where(eq(groupQuotas.groupId, groupId));
  return row;
}

/** Adds (or with negative numbers releases) usage and reservations in one write. */
export async function adjustQuota(
  tx: Executor,
  groupId: string,
  delta: { bytesUsed?: number; filesUsed?: number; bytesReserved?: number; filesReserved?: number },
  now: Date,
): Promise<QuotaRow | undefined> {
  const [row] = await tx
    .update(groupQuotas)
    .set({
      bytesUsed: sql`greatest(0, ${groupQuotas.bytesUsed} + ${delta.bytesUsed ?? 0})`,
      filesUsed: sql`greatest(0, ${groupQuotas.filesUsed} + ${delta.filesUsed ?? 0})`,
      bytesReserved: sql`greatest(0, ${groupQuotas.bytesReserved} + ${delta.bytesReserved ?? 0})`,
      filesReserved: sql`greatest(0, ${groupQuotas.filesReserved} + ${delta.filesReserved ?? 0})`,
      updatedAt: now,
    })
    .where(eq(groupQuotas.groupId, groupId))
    .returning();
  return row;
}

/**
 * Reserves `bytes` and one file for an upload in one conditional write: concurrent starts never
 * overshoot the limits. Undefined when they do not fit.
 */
export async function reserveQuota(tx: Executor, groupId: string, bytes: number, now: Date): Promise<QuotaRow | undefined> {
  const [row] = await tx
    .update(groupQuotas)
    .set({
      bytesReserved: sql`${groupQuotas.bytesReserved} + ${bytes}`,
      filesReserved: sql`${groupQuotas.filesReserved} + 1`,
      updatedAt: now,
    })
    .where(
      and(
        eq(groupQuotas.groupId, groupId),
        sql`${groupQuotas.bytesUsed} + ${groupQuotas.bytesReserved} + ${bytes} <= ${groupQuotas.bytesLimit}`,
        sql`${groupQuotas.filesUsed} + ${groupQuotas.filesReserved} + 1 <= ${groupQuotas.filesLimit}`,
      ),
    )
    .returning();
  return row;
}

/**
 * Sets an orbit's quota counters from its media rows (cleanup's self-healing step). The row is
 * locked first, in its own statement: every writer changes the quota row in the same transaction
 * as its media rows, so once the lock is held the next statement's snapshot sees each of them
 * either wholly committed or still to apply its delta on top of the recomputed numbers.
 */
export async function recomputeQuota(tx: Executor, groupId: string, now: Date): Promise<QuotaRow | undefined> {
  await tx.select({ id: groupQuotas.groupId }).from(groupQuotas).where(eq(groupQuotas.groupId, groupId)).for('update');
  const [row] = await tx
    .update(groupQuotas)
    .set({
      bytesUsed: sql`(select coalesce(sum(${media.sizeBytes}), 0) from ${media} where ${media.groupId} = ${groupId} and ${media.status} = 'complete')`,
      filesUsed: sql`(select count(*) from ${media} where ${media.groupId} = ${groupId} and ${media.status} = 'complete')`,
      bytesReserved: sql`(select coalesce(sum(${media.sizeBytes}), 0) from ${media} where ${media.groupId} = ${groupId} and ${media.status} = 'uploading')`,
      filesReserved: sql`(select count(*) from ${media} where ${media.groupId} = ${groupId} and ${media.status} = 'uploading')`,
      updatedAt: now,
    })
    .where(eq(groupQuotas.groupId, groupId))
    .returning();
  return row;
}

export type QuotaDelta = { bytesUsed?: number; filesUsed?: number; bytesReserved?: number; filesReserved?: number };

/**
 * adjustQuota for many orbits at once (cleanup batches span many): the rows are locked in
 * orbit id order — the one order every multi-orbit writer uses, so they never deadlock — and
 * written in one statement. Returns each orbit's quota after.
 */
export async function adjustQuotas(tx: Executor, deltas: Map<string, QuotaDelta>, now: Date): Promise<Map<string, QuotaRow>> {
  const out = new Map<string, QuotaRow>();
  if (deltas.size === 1) {
    const [groupId, delta] = [...deltas][0]!;
    const row = await adjustQuota(tx, groupId, delta, now);
    if (row) out.set(groupId, row);
    return out;
  }
  if (!deltas.size) return out;
  const locked = await tx
    .select()
    .from(groupQuotas)
    .where(inArray(groupQuotas.groupId, [...deltas.keys()]))
    .orderBy(asc(groupQuotas.groupId))
    .for('update');
  for (const q of locked) {
    const d = deltas.get(q.groupId)!;
    out.set(q.groupId, {
      ...q,
      bytesUsed: Math.max(0, q.bytesUsed + (d.bytesUsed ?? 0)),
      filesUsed: Math.max(0, q.filesUsed + (d.filesUsed ?? 0)),
      bytesReserved: Math.max(0, q.bytesReserved + (d.bytesReserved ?? 0)),
      filesReserved: Math.max(0, q.filesReserved + (d.filesReserved ?? 0)),
      updatedAt: now,
    });
  }
  if (!out.size) return out;
  const values = sql.join(
    [...out.values()].map((q) => sql`(${q.groupId}::uuid, ${q.bytesUsed}::bigint, ${q.filesUsed}::int, ${q.bytesReserved}::bigint, ${q.filesReserved}::int)`),
    sql`, `,
  );
  await tx.execute(sql`
    update ${groupQuotas} set bytes_used = d.bu, files_used = d.fu, bytes_reserved = d.br, files_reserved = d.fr, updated_at = ${now}
      from (values ${values}) as d(id, bu, fu, br, fr)
     where ${groupQuotas.groupId} = d.id`);
  return out;
}

/** Adds to many threads' media counts (never below zero), in thread id order. */
export async function bumpThreads(tx: Executor, deltas: Map<string, number>): Promise<void> {
  const ids = [...deltas.keys()].sort();
  if (!ids.length) return;
  if (ids.length > 1) await tx.select({ id: threads.id }).from(threads).where(inArray(threads.id, ids)).orderBy(asc(threads.id)).for('update');
  const values = sql.join(
    ids.map((id) => sql`(${id}::uuid, ${deltas.get(id)!}::int)`),
    sql`, `,
  );
  await tx.execute(sql`
    update ${threads} set media_count = greatest(0, ${threads.mediaCount} + d.n)
      from (values ${values}) as d(id, n)
     where ${threads.id} = d.id`);
}

export interface RemovedMedia {
  id: string;
  groupId: string;
  threadId: string | null;
  status: string;
  sizeBytes: number;
}

/**
 * Deletes media rows (any status) matching `where`, queues their blobs for deletion, releases
 * their quota and keeps thread media counts exact. Returns what went and each orbit's quota after.
 */
export async function removeMedia(tx: Executor, where: SQL, now: Date): Promise<{ removed: RemovedMedia[]; quotas: Map<string, QuotaRow> }> {
  const removed = await tx.delete(media).where(where).returning({
    id: media.id,
    groupId: media.groupId,
    threadId: media.threadId,
    status: media.status,
    sizeBytes: media.sizeBytes,
    blobKey: media.blobKey,
    uploadHandle: media.uploadHandle,
  });
  if (!removed.length) return { removed, quotas: new Map() };
  await enqueueBlobDeletions(tx, removed, now);
  const perGroup = new Map<string, { bytesUsed: number; filesUsed: number; bytesReserved: number; filesReserved: number }>();
  const perThread = new Map<string, number>();
  for (const m of removed) {
    const d = perGroup.get(m.groupId) ?? { bytesUsed: 0, filesUsed: 0, bytesReserved: 0, filesReserved: 0 };
    if (m.status === 'complete') {
      d.bytesUsed -= m.sizeBytes;
      d.filesUsed -= 1;
      if (m.threadId) perThread.set(m.threadId, (perThread.get(m.threadId) ?? 0) + 1);
    } else if (m.status === 'uploading') {
      d.bytesReserved -= m.sizeBytes;
      d.filesReserved -= 1;
    }
    perGroup.set(m.groupId, d);
  }
  const quotas = await adjustQuotas(tx, perGroup, now);
  await bumpThreads(tx, new Map([...perThread].map(([id, n]) => [id, -n])));
  return { removed, quotas };
}
