// What the operator's admin command reads and changes beyond the API's own paths: listings without
// ciphertext, quota limits. Deletion, passwords and sessions go through account.ts/user-sessions.ts.
import { and, asc, eq, gt, isNull, sql } from 'drizzle-orm';
import { groupMembers, groupQuotas, groups, sessions, users } from '../db/schema';
import type { Db, Executor } from '../deps';
import { recordAudit, type Witness } from './audit/record';
import { AppError } from './errors';
import { findUserByName, type UserRow } from './users';

export async function requireUserNamed(db: Executor, username: string): Promise<UserRow> {
  const user = await findUserByName(db, username);
  if (!user) throw new AppError('NOT_FOUND', `No user named "${username}".`);
  return user;
}

export async function listUsers(db: Executor, now: Date) {
  const rows = await db
    .select({
      id: users.id,
      username: users.username,
      created_at: users.createdAt,
      orbits: sql<number>`(select count(*)::int from ${groupMembers} where ${groupMembers.userId} = ${users.id})`,
      live_sessions: sql<number>`(select count(*)::int from ${sessions} where ${and(eq(sessions.userId, users.id), isNull(sessions.revokedAt), gt(sessions.expiresAt, now))})`,
    })
    .from(users)
    .orderBy(asc(users.createdAt), asc(users.id));
  return rows.map((r) => ({ ...r, orbits: Number(r.orbits), live_sessions: Number(r.live_sessions), created_at: r.created_at.toISOString() }));
}

/** Every orbit by id with its member count and storage: never its name, keys or content. */
export async function listOrbits(db: Executor) {
  const rows = await db
    .select({
      id: groups.id,
      owner: users.username,
      members: groups.memberCount,
      last_seq: groups.lastSeq,
      created_at: groups.createdAt,
      bytes_used: groupQuotas.bytesUsed,
      bytes_limit: groupQuotas.bytesLimit,
      files_used: groupQuotas.filesUsed,
      files_limit: groupQuotas.filesLimit,
    })
    .from(groups)
    .leftJoin(users, eq(users.id, groups.ownerId))
    .leftJoin(groupQuotas, eq(groupQuotas.groupId, groups.id))
    .orderBy(asc(groups.createdAt), asc(groups.id));
  return rows.map((r) => ({ ...r, created_at: r.created_at.toISOString() }));
}

/** New storage limits for one orbit (usage above them only stops new uploads), with their audit row. */
export async function setQuotaLimits(db: Db, groupId: string, limits: { bytes?: number; files?: number }, now: Date, by: Witness) {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(groupQuotas)
      .set({
        ...(limits.bytes !== undefined ? { bytesLimit: limits.bytes } : {}),
        ...(limits.files !== undefined ? { filesLimit: limits.files } : {}),
        updatedAt: now,
      })
      .where(eq(groupQuotas.groupId, groupId))
      .returning();
    if (!row) throw new AppError('NOT_FOUND', `No orbit with id ${groupId}.`);
    const detail = [limits.bytes !== undefined && `bytes ${limits.bytes}`, limits.files !== undefined && `files ${limits.files}`].filter(Boolean).join(', ');
    await recordAudit(tx, { action: 'quota.changed', by, groupId, detail, at: now });
    return row;
  });
}
