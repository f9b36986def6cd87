// A user's own sessions (one per device login): listing and revocation. Revocation marks the
// session, which also kills its refresh family; access tokens fail at the next liveness check
// (at once on this process, within the cache lifetime elsewhere).
import { and, desc, eq, gt, isNull, ne } from 'drizzle-orm';
import { sessions } from '../db/schema';
import type { Deps, Executor } from '../deps';
import { REFRESH_IDLE_MS } from './auth';
import { AppError } from './errors';
import { recordAudit, type Witness } from './audit/record';

/** Sessions listed at most: the most recently used ones (each login starts one). */
export const MAX_LISTED_SESSIONS = 100;

export interface SessionView {
  id: string;
  created_at: string;
  last_used_at: string;
  user_agent: string | null;
  current: boolean;
}

export async function listSessions(db: Executor, userId: string, currentId: string, now: Date): Promise<SessionView[]> {
  const rows = await db
    .select()
    .from(sessions)
    .where(
      and(
        eq(sessions.userId, userId),
        isNull(sessions.revokedAt),
        gt(sessions.expiresAt, now),
        gt(sessions.lastUsedAt, new Date(now.getTime() - REFRESH_IDLE_MS)),
      ),
    )
    .orderBy(desc(sessions.lastUsedAt), desc(sessions.id))
    .limit(MAX_LISTED_SESSIONS);
  return rows.map((s) => ({
    id: s.id,
    created_at: s.createdAt.toISOString(),
    last_used_at: s.lastUsedAt.toISOString(),
    user_agent: s.userAgent,
    current: s.id === currentId,
  }));
}

/** Revokes the user's live sessions (all, or all but `except`) and returns their ids. */
export async function revokeSessions(tx: Executor, userId: string, now: Date, except?: string): Promise<string[]> {
  const rows = await tx
    .update(sessions)
    .set({ revokedAt: now })
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), except ? ne(sessions.id, except) : undefined))
    .returning({ id: sessions.id });
  return rows.map((r) => r.id);
}

type SessionDeps = Pick<Deps, 'db' | 'sessions' | 'clock'>;

/** Revokes one of the user's sessions; one that has already ended answers the same (a retried DELETE). */
export async function revokeSession(deps: SessionDeps, userId: string, sessionId: string, by: Witness): Promise<void> {
  const now = deps.clock.now();
  const row = await deps.db.transaction(async (tx) => {
    const [revoked] = await tx
      .update(sessions)
      .set({ revokedAt: now })
      .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokedAt)))
      .returning({ id: sessions.id });
    if (revoked) await recordAudit(tx, { action: 'sessions.revoked', by, targetId: userId, detail: 'one', at: now });
    return revoked;
  });
  if (!row) {
    const [exists] = await deps.db
      .select({ id: sessions.id })
      .from(sessions)
      .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId)));
    if (!exists) throw new AppError('NOT_FOUND', 'No such session.');
  }
  deps.sessions.forget(sessionId);
}

/** Every session of the user but `currentId` (the API), or all of them (the operator: none kept). */
export async function revokeOtherSessions(deps: SessionDeps, userId: string, currentId: string | undefined, by: Witness): Promise<string[]> {
  const now = deps.clock.now();
  const ended = await deps.db.transaction(async (tx) => {
    const ids = await revokeSessions(tx, userId, now, currentId);
    await recordAudit(tx, { action: 'sessions.revoked', by, targetId: userId, detail: currentId ? 'others' : 'all', at: now });
    return ids;
  });
  for (const id of ended) deps.sessions.forget(id);
  return ended;
}
