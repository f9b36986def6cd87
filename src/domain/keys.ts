// Wrapped orbit keys: a (member, epoch) pair gets its wrap once, in one conditional write, and
// it is never overwritten.
import { and, asc, eq, gt, inArray } from 'drizzle-orm';
import { groupMembers, groups, memberKeys } from '../db/schema';
import type { Executor } from '../deps';
import { AppError } from './errors';
import { appendEvent, recordEvent, type StoredEvent } from './events';
import { lockGroup, requireOwnerWriter } from './groups';
import { enterAppend } from './writer';
import { recordAudit, type Witness } from './audit/record';

export async function deliverKeys(
  tx: Executor,
  input: { groupId: string; callerId: string; memberId: string; keys: Array<{ key_epoch: number; encrypted_group_key: string }>; now: Date },
): Promise<StoredEvent> {
  const { groupId, memberId, keys, now } = input;
  // Under the write gate, ordered against the caller's removal and a key reset; a pending member
  // passes it, as it may deliver its own key (checked below).
  const { member: caller, seq } = await enterAppend(tx, groupId, input.callerId, { pending: true });
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
    // A pending member may deliver only its own key; anything else is a write it may not make yet.
    if (!caller.hasKey) throw new AppError('KEY_PENDING');
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
  return recordEvent(tx, seq, {
    groupId,
    type: 'member_key_delivered',
    actorId: caller.userId,
    at: now,
    subjectId: memberId,
    data: { user_id: memberId, key_epochs: [...epochs].sort((a, b) => a - b) },
  });
}


export interface OwnKey {
  key_epoch: number;
  encrypted_group_key: string;
  delivered_by: string | null;
  delivered_at: string;
}

/** The caller's own wraps by epoch, oldest first (limit + 1 rows, for pageOf). */
export async function listOwnKeys(db: Executor, groupId: string, userId: string, page: { limit: number; afterEpoch?: number }): Promise<OwnKey[]> {
  const rows = await db
    .select()
    .from(memberKeys)
    .where(
      and(
        eq(memberKeys.groupId, groupId),
        eq(memberKeys.userId, userId),
        page.afterEpoch === undefined ? undefined : gt(memberKeys.keyEpoch, page.afterEpoch),
      ),
    )
    .orderBy(asc(memberKeys.keyEpoch))
    .limit(page.limit + 1);
  return rows.map((r) => ({
    key_epoch: r.keyEpoch,
    encrypted_group_key: r.encryptedGroupKey,
    delivered_by: r.deliveredBy,
    delivered_at: r.deliveredAt.toISOString(),
  }));
}

/** Rows per insert statement: well under Postgres' 65,535 bind parameters. */
const INSERT_BATCH = 1000;

/**
 * The owner moves the orbit to the next key epoch, wrapping the new key for exactly the members
 * who hold the current one (a member who was dropped, or one who joined meanwhile, makes it 409
 * with the set the server expects). Members still pending stay pending at the new epoch.
 */
export async function rotateKeys(
  tx: Executor,
  input: {
    groupId: string;
    actorId: string;
    keyEpoch: number;
    keys: Array<{ user_id: string; encrypted_group_key: string }>;
    keyCheck?: string;
    now: Date;
    by: Witness;
  },
): Promise<StoredEvent> {
  const { groupId, actorId, keys, now } = input;
  const group = await lockGroup(tx, groupId);
  await requireOwnerWriter(tx, groupId, actorId);
  const given = keys.map((k) => k.user_id);
  if (new Set(given).size !== given.length) throw new AppError('VALIDATION_ERROR', 'Each user_id may appear once.', { field: 'keys' });
  if (input.keyEpoch !== group.keyEpoch + 1) {
    throw new AppError('CONFLICT', `The next key epoch is ${group.keyEpoch + 1}.`, { current_key_epoch: group.keyEpoch });
  }
  const holders = await tx
    .select({ userId: memberKeys.userId })
    .from(memberKeys)
    .innerJoin(groupMembers, and(eq(groupMembers.groupId, memberKeys.groupId), eq(groupMembers.userId, memberKeys.userId)))
    .where(and(eq(memberKeys.groupId, groupId), eq(memberKeys.keyEpoch, group.keyEpoch)));
  const expected = holders.map((h) => h.userId).sort();
  const givenSet = new Set(given);
  if (expected.length !== given.length || expected.some((id) => !givenSet.has(id))) {
    throw new AppError('CONFLICT', 'The new key must be wrapped for exactly the members holding the current key.', {
      expected_user_ids: expected,
      current_key_epoch: group.keyEpoch,
    });
  }
  const rows = keys.map((k) => ({
    groupId,
    userId: k.user_id,
    keyEpoch: input.keyEpoch,
    encryptedGroupKey: k.encrypted_group_key,
    deliveredBy: actorId,
    deliveredAt: now,
  }));
  for (let i = 0; i < rows.length; i += INSERT_BATCH) await tx.insert(memberKeys).values(rows.slice(i, i + INSERT_BATCH));
  // The old key_check belongs to the old key: without a new one the orbit has none.
  const keyCheck = input.keyCheck ?? null;
  await tx.update(groups).set({ keyEpoch: input.keyEpoch, keyCheck }).where(eq(groups.id, groupId));
  await recordAudit(tx, { action: 'key.rotated', by: input.by, groupId, detail: `epoch_${input.keyEpoch}`, at: now });
  return appendEvent(tx, {
    groupId,
    type: 'key_rotated',
    actorId,
    at: now,
    data: { key_epoch: input.keyEpoch, previous_key_epoch: group.keyEpoch, key_check: keyCheck, user_ids: expected },
  });
}
