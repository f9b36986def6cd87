// Session liveness: logout, revocation, password change and deletion take effect everywhere
// within the cache's lifetime (≤ 30 s by contract).
import { and, eq, isNull } from 'drizzle-orm';
import { sessions } from '../db/schema';
import type { Deps, Executor } from '../deps';
import { sessionEnded } from './errors';
import { verifyAccessToken, type AccessClaims } from './tokens';

export async function isSessionLive(deps: Pick<Deps, 'db' | 'sessions' | 'clock'>, sessionId: string, userId: string): Promise<boolean> {
  const now = deps.clock.now().getTime();
  const cached = deps.sessions.get(sessionId, now);
  if (cached !== undefined) return cached;
  const rows = await deps.db
    .select({ id: sessions.id })
    .from(sessions)
    .where(and(eq(sessions.id, sessionId), eq(sessions.userId, userId), isNull(sessions.revokedAt)))
    .limit(1);
  const live = rows.length === 1;
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
