// Orbits and membership. Every membership change locks the orbit's row first, so member counts,
// invite uses and ownership hold under any concurrency.
import { and, count, eq, getTableColumns, sql } from 'drizzle-orm';
import { groupMembers, groupQuotas, groups, memberKeys, memberRemovals, users } from '../db/schema';
import type { Config } from '../config';
import type { Executor } from '../deps';
import { statement } from '../db/statement';
import { appendEvent, type StoredEvent } from './events';
import { AppError, noSuchOrbit } from './errors';
import { createInvite, findInvite, invalidInviteCode, isUsable, useInvite } from './invites';
import { byUser } from './audit/record';

export type GroupRow = typeof groups.$inferSelect;
export type Role = 'owner' | 'member';

export interface Membership {
  groupId: string;
  userId: string;
  role: Role;
  joinedAt: Date;
  keyEpoch: number;
  /** The member holds the orbit key of the current epoch. */
  hasKey: boolean;
}

const memberRow = {
  role: groupMembers.role,
  joinedAt: groupMembers.joinedAt,
  keyEpoch: groups.keyEpoch,
  hasKey: sql<boolean>`exists (select 1 from ${memberKeys} where ${memberKeys.groupId} = ${groups.id} and ${memberKeys.userId} = ${groupMembers.userId} and ${memberKeys.keyEpoch} = ${groups.keyEpoch})`,
};
// Built once (src/db/statement.ts): most reads of an orbit start with it.
const memberStatement = statement<{ role: Role; joinedAt: Date; keyEpoch: number; hasKey: boolean }>(
  (db) =>
    db
      .select(memberRow)
      .from(groupMembers)
      .innerJoin(groups, eq(groups.id, groupMembers.groupId))
      .where(and(eq(groupMembers.groupId, sql.placeholder('group')), eq(groupMembers.userId, sql.placeholder('user'))))
      .limit(1),
  memberRow,
);

/** The caller's membership, or 404 (an orbit one does not belong to does not exist for them). */
export async function requireMember(db: Executor, groupId: string, userId: string): Promise<Membership> {
  const [row] = await memberStatement.run(db, { group: groupId, user: userId });
  if (!row) throw noSuchOrbit();
  return { groupId, userId, role: row.role, joinedAt: row.joinedAt, keyEpoch: row.keyEpoch, hasKey: Boolean(row.hasKey) };
}

export async function requireOwner(db: Executor, groupId: string, userId: string): Promise<Membership> {
  const m = await requireMember(db, groupId, userId);
  if (m.role !== 'owner') throw new AppError('FORBIDDEN', 'Only the orbit owner can do this.');
  return m;
}

/** The owner, for an owner-only write: a member who is not the owner is 403 FORBIDDEN (whatever
 * their key), an owner without the current key 403 KEY_PENDING. */
export async function requireOwnerWriter(db: Executor, groupId: string, userId: string): Promise<Membership> {
  const m = await requireOwner(db, groupId, userId);
  if (!m.hasKey) throw new AppError('KEY_PENDING');
  return m;
}

/** Checks a client's key_epoch against the orbit's current one. */
export function checkEpoch(m: Membership, keyEpoch: number): void {
  if (keyEpoch > m.keyEpoch) {
    throw new AppError('VALIDATION_ERROR', `key_epoch must be between 1 and the orbit's current epoch ${m.keyEpoch}.`, { current_key_epoch: m.keyEpoch });
  }
}

/**
 * Locks the orbit row for a change to who may write (members, roles, keys) or to the orbit
 * itself, and bumps its roster version so writers whose snapshot predates it re-read (writer.ts).
 */
export async function lockGroup(tx: Executor, groupId: string): Promise<GroupRow> {
  // FOR UPDATE, not just the update's own lock: that one would not wait for writers' key-share locks.
  const locked = tx.$with('locked').as(tx.select({ id: groups.id }).from(groups).where(eq(groups.id, groupId)).for('update'));
  const [row] = await tx
    .with(locked)
    .update(groups)
    .set({ rosterVersion: sql`${groups.rosterVersion} + 1` })
    .from(locked)
    .where(eq(groups.id, locked.id))
    .returning(getTableColumns(groups));
  if (!row) throw noSuchOrbit();
  return row;
}

/**
 * Refuses a new orbit for a user who already owns MAX_OWNED_GROUPS. Locks the user's row, so
 * creations and ownership transfers to the same user are serialized and the cap holds.
 */
export async function ensureCanOwn(tx: Executor, config: Config, userId: string, who: string): Promise<void> {
  await tx.select({ id: users.id }).from(users).where(eq(users.id, userId)).for('no key update');
  const [owned] = await tx.select({ n: count() }).from(groups).where(eq(groups.ownerId, userId));
  if ((owned?.n ?? 0) >= config.MAX_OWNED_GROUPS) {
    throw new AppError('CONFLICT', `${who} ${config.MAX_OWNED_GROUPS} orbits, the most one user may own.`, {
      max_owned_groups: config.MAX_OWNED_GROUPS,
    });
  }
}

export async function createGroup(
  tx: Executor,
  config: Config,
  /** `address`: the creator's, for the audit row of the orbit's first invite. */
  input: { userId: string; encryptedName: string; encryptedGroupKey: string; keyCheck?: string; now: Date; address?: string },
) {
  await ensureCanOwn(tx, config, input.userId, 'You already own');
  const [group] = await tx
    .insert(groups)
    .values({
      encryptedName: input.encryptedName,
      createdBy: input.userId,
      ownerId: input.userId,
      keyCheck: input.keyCheck ?? null,
      memberCount: 1,
      maxMembers: config.MAX_MEMBERS,
      createdAt: input.now,
    })
    .returning();
  await tx.insert(groupMembers).values({ groupId: group!.id, userId: input.userId, role: 'owner', joinedAt: input.now });
  await tx.insert(memberKeys).values({
    groupId: group!.id,
    userId: input.userId,
    keyEpoch: 1,
    encryptedGroupKey: input.encryptedGroupKey,
    deliveredBy: input.userId,
    deliveredAt: input.now,
  });
  await tx.insert(groupQuotas).values({ groupId: group!.id });
  const invite = await createInvite(tx, config.jwtSecret, { groupId: group!.id, createdBy: input.userId, now: input.now, by: byUser(input.userId, input.address ?? null) });
  return { group: group!, invite };
}

/** Joins with an invite code; 404 for any code that cannot admit this user (never saying why). */
export async function joinByInvite(
  tx: Executor,
  secret: Uint8Array,
  input: { userId: string; code: string; now: Date },
): Promise<{ group: GroupRow; event: StoredEvent }> {
  const found = await findInvite(tx, secret, input.code);
  if (!found) throw invalidInviteCode();
  const group = await lockGroup(tx, found.groupId);
  const invite = await findInvite(tx, secret, input.code, true);
  if (!invite || !isUsable(invite, input.now)) throw invalidInviteCode();
  const [removal] = await tx
    .select({ at: memberRemovals.removedAt })
    .from(memberRemovals)
    .where(and(eq(memberRemovals.groupId, group.id), eq(memberRemovals.userId, input.userId)));
  if (removal && invite.createdAt <= removal.at) throw invalidInviteCode();
  const [existing] = await tx
    .select({ role: groupMembers.role })
    .from(groupMembers)
    .where(and(eq(groupMembers.groupId, group.id), eq(groupMembers.userId, input.userId)));
  if (existing) throw new AppError('ALREADY_MEMBER');
  if (group.memberCount >= group.maxMembers) {
    throw new AppError('CONFLICT', 'This orbit is full.', { max_members: group.maxMembers });
  }
  await useInvite(tx, invite.id);
  const [updated] = await tx
    .update(groups)
    .set({ memberCount: sql`${groups.memberCount} + 1` })
    .where(eq(groups.id, group.id))
    .returning();
  await tx.insert(groupMembers).values({ groupId: group.id, userId: input.userId, role: 'member', joinedAt: input.now });
  const [user] = await tx
    .select({ username: users.username, publicKey: users.publicKey, keyVersion: users.keyVersion })
    .from(users)
    .where(eq(users.id, input.userId));
  const event = await appendEvent(tx, {
    groupId: group.id,
    type: 'member_joined',
    actorId: input.userId,
    at: input.now,
    subjectId: input.userId,
    data: {
      user_id: input.userId,
      username: user!.username,
      public_key: user!.publicKey,
      key_version: user!.keyVersion,
      role: 'member',
      key_status: 'pending',
      joined_at: input.now.toISOString(),
    },
  });
  return { group: { ...updated!, lastSeq: event.seq }, event };
}

export interface GroupItem {
  id: string;
  encrypted_name: string;
  role: Role;
  owner_id: string | null;
  member_count: number;
  key_epoch: number;
  key_status: 'pending' | 'delivered';
  encrypted_group_key: string | null;
  last_seq: number;
  joined_at: string;
}

const itemColumns = {
  id: groups.id,
  encryptedName: groups.encryptedName,
  ownerId: groups.ownerId,
  memberCount: groups.memberCount,
  keyEpoch: groups.keyEpoch,
  lastSeq: groups.lastSeq,
  createdAt: groups.createdAt,
  createdBy: groups.createdBy,
  maxMembers: groups.maxMembers,
  keyCheck: groups.keyCheck,
  role: groupMembers.role,
  joinedAt: groupMembers.joinedAt,
  encryptedGroupKey: memberKeys.encryptedGroupKey,
};

function groupQuery(db: Executor, userId: string) {
  return db
    .select(itemColumns)
    .from(groupMembers)
    .innerJoin(groups, eq(groups.id, groupMembers.groupId))
    .leftJoin(
      memberKeys,
      and(eq(memberKeys.groupId, groups.id), eq(memberKeys.userId, groupMembers.userId), eq(memberKeys.keyEpoch, groups.keyEpoch)),
    );
}

type ItemRow = Awaited<ReturnType<typeof groupQuery>>[number];

function toItem(r: ItemRow): GroupItem {
  return {
    id: r.id,
    encrypted_name: r.encryptedName,
    role: r.role,
    owner_id: r.ownerId,
    member_count: r.memberCount,
    key_epoch: r.keyEpoch,
    key_status: r.encryptedGroupKey ? 'delivered' : 'pending',
    encrypted_group_key: r.encryptedGroupKey ?? null,
    last_seq: r.lastSeq,
    joined_at: r.joinedAt.toISOString(),
  };
}

function toDetail(r: ItemRow) {
  return {
    ...toItem(r),
    created_at: r.createdAt.toISOString(),
    created_by: r.createdBy,
    max_members: r.maxMembers,
    key_check: r.keyCheck ?? null,
  };
}

export type GroupDetail = ReturnType<typeof toDetail>;

export async function listGroups(db: Executor, userId: string): Promise<GroupItem[]> {
  const rows = await groupQuery(db, userId).where(eq(groupMembers.userId, userId)).orderBy(groupMembers.joinedAt, groups.id);
  return rows.map(toItem);
}

export async function getGroup(db: Executor, groupId: string, userId: string): Promise<GroupDetail> {
  const [row] = await groupQuery(db, userId).where(and(eq(groupMembers.userId, userId), eq(groups.id, groupId)));
  if (!row) throw noSuchOrbit();
  return toDetail(row);
}
