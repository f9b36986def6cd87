// Relay messages: opaque envelopes for every member of an orbit, or one envelope per chosen
// member. A per-recipient envelope is readable only by its recipient, in the list and in the
// event log (the public event carries no envelope; each recipient's part is private to them).
import { and, asc, eq, gt, inArray, isNotNull, or } from 'drizzle-orm';
import { groupMembers, signalMessageRecipients, signalMessages } from '../db/schema';
import type { Executor } from '../deps';
import { AppError } from './errors';
import { recordEvent, type StoredEvent } from './events';
import { checkEpoch, requireMember } from './groups';
import { enterAppend } from './writer';

export interface MessageItem {
  id: string;
  sender_id: string | null;
  key_epoch: number | null;
  envelope: string | null;
  seq: number;
  server_timestamp: string;
}

export type MessageInput =
  | { keyEpoch?: number; envelope: string }
  | { keyEpoch?: number; recipients: Array<{ userId: string; envelope: string }> };

export async function sendMessage(
  tx: Executor,
  input: { groupId: string; senderId: string; message: MessageInput; now: Date },
): Promise<{ message: MessageItem; event: StoredEvent }> {
  const { groupId, senderId, message, now } = input;
  // The check and the seq in one statement, under the lock that orders the message against removal.
  const { member, seq } = await enterAppend(tx, groupId, senderId);
  if (message.keyEpoch !== undefined) checkEpoch(member, message.keyEpoch);
  const recipients = 'recipients' in message ? message.recipients : null;
  if (recipients) await requireRecipientsAreMembers(tx, groupId, recipients.map((r) => r.userId));

  const [row] = await tx
    .insert(signalMessages)
    .values({
      groupId,
      senderId,
      keyEpoch: message.keyEpoch ?? null,
      envelope: recipients ? null : (message as { envelope: string }).envelope,
      seq,
      createdAt: now,
    })
    .returning({ id: signalMessages.id });
  if (recipients) {
    await tx.insert(signalMessageRecipients).values(recipients.map((r) => ({ messageId: row!.id, userId: r.userId, envelope: r.envelope })));
  }
  const item: MessageItem = {
    id: row!.id,
    sender_id: senderId,
    key_epoch: message.keyEpoch ?? null,
    envelope: recipients ? null : (message as { envelope: string }).envelope,
    seq,
    server_timestamp: now.toISOString(),
  };
  const event = await recordEvent(tx, seq, {
    groupId,
    type: 'message_created',
    actorId: senderId,
    at: now,
    subjectId: item.id,
    data: { ...item },
    private: recipients ? Object.fromEntries(recipients.map((r) => [r.userId, { envelope: r.envelope }])) : null,
  });
  return { message: item, event };
}

async function requireRecipientsAreMembers(tx: Executor, groupId: string, userIds: string[]): Promise<void> {
  const found = await tx
    .select({ userId: groupMembers.userId })
    .from(groupMembers)
    .where(and(eq(groupMembers.groupId, groupId), inArray(groupMembers.userId, userIds)));
  const members = new Set(found.map((r) => r.userId));
  const outsiders = userIds.filter((id) => !members.has(id));
  if (outsiders.length) {
    throw new AppError('VALIDATION_ERROR', 'Every recipient must be a member of this orbit.', { field: 'recipients', not_members: outsiders });
  }
}

/** Messages after a seq that the caller may read: those for everyone and those addressed to them. */
export async function listMessages(
  db: Executor,
  input: { groupId: string; viewerId: string; afterSeq: number; limit: number },
): Promise<Array<MessageItem & { envelope: string }>> {
  await requireMember(db, input.groupId, input.viewerId);
  const mine = and(eq(signalMessageRecipients.messageId, signalMessages.id), eq(signalMessageRecipients.userId, input.viewerId));
  const rows = await db
    .select({
      id: signalMessages.id,
      senderId: signalMessages.senderId,
      keyEpoch: signalMessages.keyEpoch,
      ownEnvelope: signalMessageRecipients.envelope,
      publicEnvelope: signalMessages.envelope,
      seq: signalMessages.seq,
      createdAt: signalMessages.createdAt,
    })
    .from(signalMessages)
    .leftJoin(signalMessageRecipients, mine)
    .where(
      and(
        eq(signalMessages.groupId, input.groupId),
        gt(signalMessages.seq, input.afterSeq),
        or(isNotNull(signalMessages.envelope), isNotNull(signalMessageRecipients.userId)),
      ),
    )
    .orderBy(asc(signalMessages.seq))
    .limit(input.limit);
  return rows.map((r) => ({
    id: r.id,
    sender_id: r.senderId,
    key_epoch: r.keyEpoch,
    // The where clause keeps only rows with one of the two.
    envelope: (r.ownEnvelope ?? r.publicEnvelope)!,
    seq: r.seq,
    server_timestamp: r.createdAt.toISOString(),
  }));
}
