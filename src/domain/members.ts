// The member list: who is in an orbit, their public keys (to wrap the orbit key for them) and
// whether they hold the key of the current epoch.
import { and, asc, eq } from 'drizzle-orm';
import { groupMembers, groups, memberKeys, users } from '../db/schema';
import type { Executor } from '../deps';
import { afterTimeId, exactTime } from './keyset';
import type { Role } from './groups';

export interface MemberItem {
  user_id: string;
  username: string;
  public_key: Record<string, unknown>;
  key_version: number;
  role: Role;
  key_status: 'pending' | 'delivered';
  key_delivered_by: string | null;
  joined_at: string;
}

/** One page (limit + 1 rows, for pageOf) in join order; `cursorAt` is the exact joined_at for the cursor. */
export async function listMembers(
  db: Executor,
  groupId: string,
  page: { limit: number; after?: readonly [string, string] },
): Promise<Array<MemberItem & { cursorAt: string }>> {
  const rows = await db
    .select({
      userId: groupMembers.userId,
      username: users.username,
      publicKey: users.publicKey,
      keyVersion: users.keyVersion,
      role: groupMembers.role,
      joinedAt: groupMembers.joinedAt,
      cursorAt: exactTime(groupMembers.joinedAt),
      keyEpoch: memberKeys.keyEpoch,
      deliveredBy: memberKeys.deliveredBy,
    })
    .from(groupMembers)
    .innerJoin(groups, eq(groups.id, groupMembers.groupId))
    .innerJoin(users, eq(users.id, groupMembers.userId))
    .leftJoin(
      memberKeys,
      and(eq(memberKeys.groupId, groupMembers.groupId), eq(memberKeys.userId, groupMembers.userId), eq(memberKeys.keyEpoch, groups.keyEpoch)),
    )
    .where(and(eq(groupMembers.groupId, groupId), afterTimeId(groupMembers.joinedAt, groupMembers.userId, page.after)))
    .orderBy(asc(groupMembers.joinedAt), asc(groupMembers.userId))
    .limit(page.limit + 1);
  return rows.map((r) => ({
    user_id: r.userId,
    username: r.username,
    public_key: r.publicKey,
    key_version: r.keyVersion,
    role: r.role,
    key_status: r.keyEpoch === null ? 'pending' : 'delivered',
    key_delivered_by: r.keyEpoch === null ? null : r.deliveredBy,
    joined_at: r.joinedAt.toISOString(),
    cursorAt: r.cursorAt,
  }));
}
