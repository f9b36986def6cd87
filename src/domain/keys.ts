// Wrapped orbit keys: a (member, epoch) pair gets its wrap once, in one conditional write, and
// it is never overwritten.
import { and, eq, inArray } from 'drizzle-orm';
import { groupMembers, memberKeys } from '../db/schema';
import type { Executor } from '../deps';
import { AppError } from './errors';
import { appendEvent, type StoredEvent } from './events';
import type { Membership } from './groups';

export async function deliverKeys(
  tx: Executor,
  input: { caller: Membership; memberId: string; keys: Array<{ key_epoch: number; encrypted_group_key: string }>; now: Date },
): Promise<StoredEvent> {
  const { caller, memberId, keys, now } = input;
  const groupId = caller.groupId;
  const epochs = keys.map((k) => k.key_epoch);
  if (new Set(epochs).size !== epochs.length) throw new AppError('VALIDATION_ERROR', 'Each key_epoch may appear once.');
  const tooNew = epochs.filter((e) => e > caller.keyEpoch);
  if (tooNew.length) throw new AppError('VALIDATION_ERROR', `key_epoch must be between 1 and ${caller.keyEpoch}.`, { current_key_epoch: caller.keyEpoch });

  const [member] = await tx
    .select({ userId: groupMembers.userId })
    .from(groupMembers)
    .where(and(eq(groupMembers.groupId, groupId), eq(groupMembers.userId, memberId)));
  if (!member) throw new AppError('NOT_FOUND', 'No such member.');
  if (caller.userId !== memberId) {
    // Delivering for someone else needs a key to wrap: the caller holds the epochs it delivers.
    const held = await tx
      .select({ epoch: memberKeys.keyEpoch })
      .from(memberKeys)
      .where(and(eq(memberKeys.groupId, groupId), eq(memberKeys.userId, caller.userId), inArray(memberKeys.keyEpoch, epochs)));
    if (held.length !== epochs.length) throw new AppError('FORBIDDEN', 'Only a member holding the key of an epoch can deliver it.');
  }

  const inserted = await tx
    .insert(memberKeys)
    .values(keys.map((k) => ({ groupId, userId: memberId, keyEpoch: k.key_epoch, encryptedGroupKey: k.encrypted_group_key, deliveredBy: caller.userId, deliveredAt: now })))
    .onConflictDoNothing()
    .returning({ epoch: memberKeys.keyEpoch });
  if (inserted.length !== keys.length) {
    // All or nothing: a delivered key is never overwritten, and a partial write would hide that.
    throw new AppError('CONFLICT', 'A key for this member and epoch was already delivered.', {
      delivered_key_epochs: epochs.filter((e) => !inserted.some((i) => i.epoch === e)),
    });
  }
  return appendEvent(tx, {
    groupId,
    type: 'member_key_delivered',
    actorId: caller.userId,
    at: now,
    subjectId: memberId,
    data: { user_id: memberId, key_epochs: [...epochs].sort((a, b) => a - b) },
  });
}

