// Whether a live socket may stay open: its session is still live, and its user is still the same
// member (same joined_at) it was when the socket opened. A different joined_at means a member_left
// came in between, even when the user has joined again since.
import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import { groupMembers, groups, sessions } from '../../db/schema';
import type { Executor } from '../../deps';
import { CLOSE } from './protocol';

/** Per live session: the orbits (of those asked about) where its user is a member, with joined_at (ms). */
export type Access = Map<string, Map<string, number>>;

/** One query: which of `sessionIds` are live, and their users' memberships in `groupIds`. */
export async function socketAccess(db: Executor, sessionIds: string[], groupIds: string[]): Promise<Access> {
  const access: Access = new Map();
  if (!sessionIds.length) return access;
  const rows = await db
    .select({ sessionId: sessions.id, groupId: groupMembers.groupId, joinedAt: groupMembers.joinedAt })
    .from(sessions)
    .leftJoin(groupMembers, and(eq(groupMembers.userId, sessions.userId), inArray(groupMembers.groupId, groupIds)))
    .where(and(inArray(sessions.id, sessionIds), isNull(sessions.revokedAt)));
  for (const r of rows) {
    let orbits = access.get(r.sessionId);
    if (!orbits) access.set(r.sessionId, (orbits = new Map()));
    if (r.groupId && r.joinedAt) orbits.set(r.groupId, r.joinedAt.getTime());
  }
  return access;
}

interface Closable {
  readonly state: { groupId: string; sessionId: string; joinedAt: number };
  close(code: number, reason: string): void;
}

/** Closes the socket unless `access` lets it stay: 4401 for an ended session, 4403 for a former member. */
export function enforceAccess(peer: Closable, access: Access): boolean {
  const orbits = access.get(peer.state.sessionId);
  if (!orbits) {
    peer.close(CLOSE.unauthorized, 'session ended');
    return false;
  }
  if (orbits.get(peer.state.groupId) !== peer.state.joinedAt) {
    peer.close(CLOSE.removed, 'no longer a member');
    return false;
  }
  return true;
}

/** The orbit's head when a socket starts, and its user's membership and session then. */
export interface StartingPoint {
  last: number;
  joinedAt: number | null;
  sessionLive: boolean;
}

/**
 * A socket's starting point and its right to it, read in one statement (one snapshot): the orbit's
 * head, the user's membership and the session. A removal commits both the member row and its
 * member_left, so either the member is gone here or member_left is above `last`.
 * Null when the orbit is gone.
 */
export async function startingPoint(
  db: Executor,
  input: { groupId: string; userId: string; sessionId: string },
): Promise<StartingPoint | null> {
  const [row] = await db
    .select({
      last: groups.lastSeq,
      joinedAt: groupMembers.joinedAt,
      sessionLive: sql<boolean>`exists (select 1 from ${sessions} where ${sessions.id} = ${input.sessionId} and ${sessions.revokedAt} is null)`,
    })
    .from(groups)
    .leftJoin(groupMembers, and(eq(groupMembers.groupId, groups.id), eq(groupMembers.userId, input.userId)))
    .where(eq(groups.id, input.groupId));
  if (!row) return null;
  return { last: row.last, joinedAt: row.joinedAt ? row.joinedAt.getTime() : null, sessionLive: Boolean(row.sessionLive) };
}
