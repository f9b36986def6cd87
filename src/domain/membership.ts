// Leaving, removal and account deletion share one path: the orbit row is locked, the member goes,
// ownership passes on, and the last member out takes the orbit (rows now, blobs via the queue).
import { and, asc, eq, sql } from 'drizzle-orm';
import { groupMembers, groups, media, memberKeys, memberRemovals } from '../db/schema';
import type { Executor } from '../deps';
import { AppError } from './errors';
import { appendEvent, type StoredEvent } from './events';
import { lockGroup, requireMember } from './groups';
import { removeMedia } from './quota';
import { recordAudit, type Witness } from './audit/record';

export type LeaveReason = 'left' | 'removed' | 'deleted';

export interface RemovalResult {
  events: StoredEvent[];
  /** The orbit itself was deleted (its last member left). */
  groupDeleted: boolean;
}

export async function removeMember(
  tx: Executor,
  input: { groupId: string; userId: string; actorId: string | null; reason: LeaveReason; now: Date; by: Witness },
): Promise<RemovalResult> {
  const { groupId, userId, reason, now, by } = input;
  const group = await lockGroup(tx, groupId);
  const [member] = await tx
    .select({ role: groupMembers.role })
    .from(groupMembers)
    .where(and(eq(groupMembers.groupId, groupId), eq(groupMembers.userId, userId)));
  if (!member) throw new AppError('NOT_FOUND', 'No such member.');

  if (group.memberCount <= 1) {
    // The last member: the orbit goes. Blobs are queued before the rows cascade away.
    await removeMedia(tx, eq(media.groupId, groupId), now);
    await tx.delete(groups).where(eq(groups.id, groupId));
    await recordAudit(tx, { action: 'orbit.deleted', by, targetId: userId, groupId, detail: `last_member_${reason}`, at: now });
    // Not stored (the log went with the orbit), but live sockets still learn of it and close.
    const farewell: StoredEvent = {
      groupId,
      seq: group.lastSeq + 1,
      type: 'member_left',
      actorId: input.actorId,
      at: now,
      data: { user_id: userId, reason, group_deleted: true },
    };
    return { events: [farewell], groupDeleted: true };
  }

  // Open uploads of the leaving member can never complete: release their reservations now.
  await removeMedia(tx, and(eq(media.groupId, groupId), eq(media.authorId, userId), eq(media.status, 'uploading'))!, now);
  await tx.delete(groupMembers).where(and(eq(groupMembers.groupId, groupId), eq(groupMembers.userId, userId)));
  await tx.delete(memberKeys).where(and(eq(memberKeys.groupId, groupId), eq(memberKeys.userId, userId)));
  if (reason === 'removed') {
    await tx
      .insert(memberRemovals)
      .values({ groupId, userId, removedAt: now })
      .onConflictDoUpdate({ target: [memberRemovals.groupId, memberRemovals.userId], set: { removedAt: now } });
  }
  await tx.update(groups).set({ memberCount: sql`${groups.memberCount} - 1` }).where(eq(groups.id, groupId));
  await recordAudit(tx, { action: 'member.removed', by, targetId: userId, groupId, detail: reason, at: now });

  const events: StoredEvent[] = [];
  events.push(await appendEvent(tx, { groupId, type: 'member_left', actorId: input.actorId, at: now, subjectId: userId, data: { user_id: userId, reason } }));

  if (member.role === 'owner') {
    const heir = await pickHeir(tx, groupId, group.keyEpoch);
    await tx.update(groupMembers).set({ role: 'owner' }).where(and(eq(groupMembers.groupId, groupId), eq(groupMembers.userId, heir)));
    await tx.update(groups).set({ ownerId: heir }).where(eq(groups.id, groupId));
    await recordAudit(tx, { action: 'ownership.transferred', by, targetId: heir, groupId, detail: 'owner_left', at: now });
    events.push(
      await appendEvent(tx, { groupId, type: 'group_updated', actorId: input.actorId, at: now, data: { id: groupId, owner_id: heir, previous_owner_id: userId, reason: 'owner_left' } }),
    );
  }
  return { events, groupDeleted: false };
}

/**
 * DELETE /members/:userId: the caller leaving (any member, pending ones too), or the owner removing
 * someone else. Roles are read under the orbit row's lock, so a concurrent hand-over cannot let a
 * former owner remove anyone.
 */
export async function leaveOrRemove(
  tx: Executor,
  input: { groupId: string; actorId: string; memberId: string; now: Date; by: Witness },
): Promise<RemovalResult> {
  const { groupId, actorId, memberId, now, by } = input;
  await lockGroup(tx, groupId);
  const caller = await requireMember(tx, groupId, actorId);
  if (memberId === actorId) return removeMember(tx, { groupId, userId: memberId, actorId, reason: 'left', now, by });
  if (caller.role !== 'owner') throw new AppError('FORBIDDEN', 'Only the orbit owner can remove other members.');
  if (!caller.hasKey) throw new AppError('KEY_PENDING');
  return removeMember(tx, { groupId, userId: memberId, actorId, reason: 'removed', now, by });
}

/** The longest-standing member holding the current key (ties by user id), else the longest-standing member. */
async function pickHeir(tx: Executor, groupId: string, keyEpoch: number): Promise<string> {
  const [heir] = await tx
    .select({ userId: groupMembers.userId })
    .from(groupMembers)
    .leftJoin(memberKeys, and(eq(memberKeys.groupId, groupMembers.groupId), eq(memberKeys.userId, groupMembers.userId), eq(memberKeys.keyEpoch, keyEpoch)))
    .where(eq(groupMembers.groupId, groupId))
    .orderBy(sql`${memberKeys.userId} is null`, asc(groupMembers.joinedAt), asc(groupMembers.userId))
    .limit(1);
  if (!heir) throw new Error('an orbit with members left has no heir');
  return heir.userId;
}
