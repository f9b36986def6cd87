// Session liveness: logout, revocation, password change and deletion take effect everywhere
// within the cache's lifetime (≤ 30 s by contract).
import { and, eq, isNull, sql } from 'drizzle-orm';
import { sessions } from '../db/schema';
import type { Deps, Executor } from '../deps';
import { statement } from '../db/statement';
import { sessionEnded } from './errors';
import { verifyAccessToken, type AccessClaims } from './tokens';

const sessionRow = { id: sessions.id };
// Built once (src/db/statement.ts): every request and socket whose session is not cached runs it.
const liveSession = statement<{ id: string }>(
  (db) =>
    db
      .select(sessionRow)
      .from(sessions)
      .where(and(eq(sessions.id, sql.placeholder('session')), eq(sessions.userId, sql.placeholder('user')), isNull(sessions.revokedAt)))
      .limit(1),
  sessionRow,
);

export async function isSessionLive(deps: Pick<Deps, 'db' | 'sessions' | 'clock'>, sessionId: string, userId: string): Promise<boolean> {
  const now = deps.clock.now().getTime();
  const cached = deps.sessions.get(sessionId, now);
  if (cached !== undefined) return cached;
  const live = (await liveSession.run(deps.db, { session: sessionId, user: userId })).length === 1;
  deps.sessions.set(sessionId, live, now);
  return live;
}

/** Verifies a bearer token and that its session is still live. */
export async function authenticate(deps: Pick<Deps, 'db' | 'sessions' | 'clock' | 'config'>, token: string): Promise<AccessClaims> {
  const claims = await verifyAccessToken(deps.config.jwtSecret, token, deps.clock.now());
  if (!(await isSessionLive(deps, claims.sessionId, claims.userId))) {
    throw sessionEnded();
  }
  return claims;
}
