// Owner-only changes to the orbit itself: its (encrypted) name and who owns it. Both lock the orbit
// row first, so an owner who is concurrently handing the orbit over cannot also act as its owner.
import { and, eq } from 'drizzle-orm';
import { groupMembers, groups, memberKeys, users } from '../db/schema';
import type { Config } from '../config';
import type { Executor } from '../deps';
import { AppError } from './errors';
import { appendEvent, type StoredEvent } from './events';
import { ensureCanOwn, lockGroup, requireOwnerWriter } from './groups';
import { recordAudit, type Witness } from './audit/record';

export async function renameGroup(
  tx: Executor,
  input: { groupId: string; actorId: string; encryptedName: string; now: Date },
): Promise<StoredEvent> {
  const { groupId, actorId, now } = input;
  await lockGroup(tx, groupId);
  await requireOwnerWriter(tx, groupId, actorId);
  await tx.update(groups).set({ encryptedName: input.encryptedName }).where(eq(groups.id, groupId));
  return appendEvent(tx, {
    groupId,
    type: 'group_updated',
    actorId,
    at: now,
    data: { id: groupId, encrypted_name: input.encryptedName, reason: 'renamed' },
  });
}

/**
 * Hands the orbit to another member holding the current key; the old owner stays as a member.
 * Returns null when the caller names itself (it already owns the orbit: nothing changes).
 */
export async function transferOwnership(
  tx: Executor,
  config: Config,
  input: { groupId: string; actorId: string; newOwnerId: string; now: Date; by: Witness },
): Promise<StoredEvent | null> {
  const { groupId, actorId, newOwnerId, now } = input;
  // The new owner's user row before the orbit, the order upload starts and key resets lock them in.
  await tx.select({ id: users.id }).from(users).where(eq(users.id, newOwnerId)).for('no key update');
  const group = await lockGroup(tx, groupId);
  await requireOwnerWriter(tx, groupId, actorId);
  if (newOwnerId === actorId) return null;
  const [target] = await tx
    .select({ userId: groupMembers.userId, keyEpoch: memberKeys.keyEpoch })
    .from(groupMembers)
    .leftJoin(
      memberKeys,
      and(eq(memberKeys.groupId, groupMembers.groupId), eq(memberKeys.userId, groupMembers.userId), eq(memberKeys.keyEpoch, group.keyEpoch)),
    )
    .where(and(eq(groupMembers.groupId, groupId), eq(groupMembers.userId, newOwnerId)));
  if (!target) throw new AppError('NOT_FOUND', 'No such member.');
  if (target.keyEpoch === null) {
    throw new AppError('CONFLICT', 'Ownership can only go to a member holding the current orbit key.', { key_epoch: group.keyEpoch });
  }
  await ensureCanOwn(tx, config, newOwnerId, 'This member already owns');
  await tx.update(groupMembers).set({ role: 'member' }).where(and(eq(groupMembers.groupId, groupId), eq(groupMembers.userId, actorId)));
  await tx.update(groupMembers).set({ role: 'owner' }).where(and(eq(groupMembers.groupId, groupId), eq(groupMembers.userId, newOwnerId)));
  await tx.update(groups).set({ ownerId: newOwnerId }).where(eq(groups.id, groupId));
  await recordAudit(tx, { action: 'ownership.transferred', by: input.by, targetId: newOwnerId, groupId, detail: 'transferred', at: now });
  return appendEvent(tx, {
    groupId,
    type: 'group_updated',
    actorId,
    at: now,
    data: { id: groupId, owner_id: newOwnerId, previous_owner_id: actorId, reason: 'ownership_transferred' },
  });
}
