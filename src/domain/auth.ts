// Accounts and sessions: registration, login, rotating refresh tokens with a 30 s reuse grace.
import { and, eq, inArray, isNull } from 'drizzle-orm';
import { refreshTokens, retiredUsernames, sessions, users } from '../db/schema';
import type { Deps, Executor } from '../deps';
import { AppError } from './errors';
import { joinByInvite } from './groups';
import { findInvite, invalidInviteCode, isUsable } from './invites';
import { isUsableRegistrationCode, useRegistrationCode } from './registration/codes';
import { auditLockout } from './audit/lockout';
import { byUser, recordAudit } from './audit/record';
import { limitKey, limits, PASSWORD_SLOWDOWN } from './limits';
import { consume, reserve } from './rate-limit';
import { ACCESS_TTL_SEC, hashOpaqueToken, newOpaqueToken, signAccessToken } from './tokens';
import type { StoredEvent } from './events';
import { findUserByName, userView, type UserRow } from './users';
import type { PublicJwk } from './jwk';

const DAY = 86_400_000;
export const REFRESH_IDLE_MS = 30 * DAY;
export const REFRESH_ABSOLUTE_MS = 90 * DAY;
export const REUSE_GRACE_MS = 30_000;

type AuthDeps = Pick<Deps, 'db' | 'config' | 'clock' | 'hasher' | 'limiter' | 'sessions'>;

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

async function issueTokens(deps: AuthDeps, tx: Executor, userId: string, sessionId: string, now: Date): Promise<TokenPair> {
  const refresh = await newOpaqueToken();
  await tx.insert(refreshTokens).values({ tokenHash: refresh.hash, sessionId, createdAt: now });
  return {
    access_token: await signAccessToken(deps.config.jwtSecret, userId, sessionId, now),
    refresh_token: refresh.token,
    expires_in: ACCESS_TTL_SEC,
  };
}

async function startSession(deps: AuthDeps, tx: Executor, userId: string, userAgent: string | undefined, now: Date): Promise<TokenPair> {
  const [session] = await tx
    .insert(sessions)
    .values({ userId, createdAt: now, lastUsedAt: now, expiresAt: new Date(now.getTime() + REFRESH_ABSOLUTE_MS), userAgent: userAgent?.slice(0, 256) ?? null })
    .returning({ id: sessions.id });
  return issueTokens(deps, tx, userId, session!.id, now);
}

export async function register(
  deps: AuthDeps,
  input: { username: string; password: string; publicKey: PublicJwk; inviteCode?: string; ip: string; userAgent?: string },
): Promise<{ user: ReturnType<typeof userView>; tokens: TokenPair; events: StoredEvent[] }> {
  const { config, clock, limiter } = deps;
  if (config.REGISTRATION === 'closed') throw new AppError('FORBIDDEN', 'Registration is closed on this server.');
  if (config.REGISTRATION === 'invite' && !input.inviteCode) {
    throw new AppError('VALIDATION_ERROR', 'An invite_code is required to register on this server.', { field: 'invite_code' });
  }
  // Per IP: http/ip-limits.ts, before this runs. Per username here, before any hashing.
  await consume(limiter, clock, [{ key: limitKey.registerUser(input.username), window: limits(config).registrationsPerUsername }]);

  const lower = input.username.toLowerCase();
  const taken = async (db: Executor) => {
    const [u] = await db.select({ id: users.id }).from(users).where(eq(users.usernameLower, lower));
    const [r] = await db.select({ u: retiredUsernames.usernameLower }).from(retiredUsernames).where(eq(retiredUsernames.usernameLower, lower));
    return Boolean(u || r);
  };
  const attempt = async () => {
    // The code first: without a valid one, a taken name must read like a free one (no way to learn
    // who has an account on an invite-only server by trying made-up codes).
    if (input.inviteCode && !(await codeAdmits(deps.db, config.jwtSecret, input.inviteCode, clock.now()))) throw invalidInviteCode();
    // Checked before hashing so a taken name costs no argon2 work; checked again by the unique index.
    if (await taken(deps.db)) throw usernameTaken();
    const passwordHash = await deps.hasher.hash(input.password);
    const now = clock.now();
    try {
      return await deps.db.transaction(async (tx) => {
        if (await taken(tx)) throw usernameTaken();
        const [user] = await tx
          .insert(users)
          .values({ username: input.username, usernameLower: lower, passwordHash, publicKey: input.publicKey, createdAt: now })
          .returning();
        await recordAudit(tx, { action: 'account.created', by: byUser(user!.id, input.ip), targetId: user!.id, at: now });
        const events: StoredEvent[] = [];
        // An operator's registration code admits without an orbit; any other code is an orbit invite.
        if (input.inviteCode && !(await useRegistrationCode(tx, config.jwtSecret, input.inviteCode, now))) {
          const joined = await joinByInvite(tx, config.jwtSecret, { userId: user!.id, code: input.inviteCode, now });
          events.push(joined.event);
        }
        const tokens = await startSession(deps, tx, user!.id, input.userAgent, now);
        return { user: userView(user!), tokens, events };
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw usernameTaken();
      throw err;
    }
  };
  // An invite code is a join attempt: its unit is taken before any hashing.
  return input.inviteCode ? withinJoinBudget(deps, undefined, input.ip, attempt) : attempt();
}

/** A registration code or an orbit invite that can still be used (the transaction takes it). */
async function codeAdmits(db: Executor, secret: Uint8Array, code: string, now: Date): Promise<boolean> {
  if (await isUsableRegistrationCode(db, secret, code, now)) return true;
  const invite = await findInvite(db, secret, code);
  return Boolean(invite && isUsable(invite, now));
}

const usernameTaken = () => new AppError('CONFLICT', 'This username is taken.', { field: 'username' });

export function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    if ((e as { code?: unknown }).code === '23505') return true;
  }
  return false;
}

/** Who is checking a password: anyone at an address (login), or a holder of the account's session. */
export type PasswordCheckFrom = { ip: string } | { userId: string };

/**
 * Checks a password against the login budgets (login, password change, account deletion). Before
 * any argon2 work it takes a unit of the refusing budget: (username, address) for a login, the
 * account itself for a session holder (strangers cannot reach it). Failures from everywhere also
 * count against the username's ceiling, which only slows (see slowDown). Units are given back
 * unless the check fails. The per-IP login budget is the route's (http/ip-limits.ts). An unknown
 * user costs the same argon2 work as a known one.
 */
export async function checkPassword(
  deps: AuthDeps,
  user: UserRow | undefined,
  username: string,
  password: string,
  from: PasswordCheckFrom,
  /** The client's address, for the audit row of a lockout (a login's is `from.ip`). */
  address: string | null = 'ip' in from ? from.ip : null,
): Promise<UserRow> {
  const budget = limits(deps.config);
  const refusing =
    'ip' in from
      ? { key: limitKey.passwordUserIp(username, from.ip), window: budget.passwordFailuresPerUsernameIp }
      : { key: limitKey.passwordAccount(from.userId), window: budget.passwordFailuresPerAccount };
  const actorId = 'userId' in from ? from.userId : null;
  const refund = await reserve(deps.limiter, deps.clock, [refusing]).catch(auditLockout(deps, [refusing], { actorId, targetId: user?.id, address }));
  const unslow = await slowDown(deps, username).catch(async (err) => {
    await refund();
    throw err;
  });
  const { ok, outdated } = await deps.hasher.verify(user?.passwordHash ?? deps.hasher.dummyHash, password);
  if (!ok || !user) throw new AppError('INVALID_CREDENTIALS');
  await refund();
  await unslow();
  if (outdated) await rehash(deps, user, password);
  return user;
}

/**
 * A hash made at another cost, or of a prefix (before the UTF-8 fix), made anew at this one now
 * that the password is known; only if no password change came first.
 */
async function rehash(deps: Pick<Deps, 'db' | 'hasher'>, user: UserRow, password: string): Promise<void> {
  const passwordHash = await deps.hasher.hash(password);
  await deps.db
    .update(users)
    .set({ passwordHash })
    .where(and(eq(users.id, user.id), eq(users.passwordHash, user.passwordHash)));
}

/**
 * Counts a password check against the username's ceiling; past it, waits longer the more checks
 * failed (up to PASSWORD_SLOWDOWN.maxMs) instead of refusing, so a distributed guesser is slowed
 * and the owner still gets in. Returns the refund for a check that succeeds.
 */
async function slowDown(deps: AuthDeps, username: string): Promise<() => Promise<void>> {
  if (!deps.limiter.enabled) return async () => undefined;
  const key = limitKey.passwordUser(username);
  const window = limits(deps.config).passwordFailuresPerUsername;
  const { total } = await deps.limiter.hit(key, window);
  const over = total - window.limit;
  if (over > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(PASSWORD_SLOWDOWN.maxMs, over * PASSWORD_SLOWDOWN.stepMs)));
  return () => deps.limiter.release(key);
}

export async function login(deps: AuthDeps, input: { username: string; password: string; ip: string; userAgent?: string }) {
  const user = await checkPassword(deps, await findUserByName(deps.db, input.username), input.username, input.password, { ip: input.ip });
  const now = deps.clock.now();
  const tokens = await deps.db.transaction((tx) => startSession(deps, tx, user.id, input.userAgent, now));
  return { user: userView(user), tokens };
}

/**
 * Rotates a refresh token. One conditional write decides which request rotates it; a token
 * already rotated less than 30 s ago (a lost response, a second window) yields another fresh
 * pair of the same family; older reuse revokes the family (a stolen token: audited, no actor).
 */
export async function refresh(deps: AuthDeps, input: { refreshToken: string; ip: string }): Promise<{ user: ReturnType<typeof userView>; tokens: TokenPair }> {
  const hash = await hashOpaqueToken(input.refreshToken);
  const now = deps.clock.now();
  const invalid = () => new AppError('UNAUTHENTICATED', 'This refresh token is not valid; please log in again.');
  const outcome = await deps.db.transaction(async (tx) => {
    const [found] = await tx
      .select({ session: sessions, rotatedAt: refreshTokens.rotatedAt })
      .from(refreshTokens)
      .innerJoin(sessions, eq(sessions.id, refreshTokens.sessionId))
      .where(eq(refreshTokens.tokenHash, hash));
    if (!found) return { error: invalid() };
    const { session } = found;
    if (session.revokedAt || session.expiresAt <= now || session.lastUsedAt.getTime() + REFRESH_IDLE_MS <= now.getTime()) {
      return { error: invalid() };
    }
    const rotated = await tx
      .update(refreshTokens)
      .set({ rotatedAt: now })
      .where(and(eq(refreshTokens.tokenHash, hash), isNull(refreshTokens.rotatedAt)))
      .returning({ at: refreshTokens.rotatedAt });
    if (!rotated.length) {
      const [again] = await tx.select({ rotatedAt: refreshTokens.rotatedAt }).from(refreshTokens).where(eq(refreshTokens.tokenHash, hash));
      if (!again?.rotatedAt || now.getTime() - again.rotatedAt.getTime() > REUSE_GRACE_MS) {
        const [ended] = await tx
          .update(sessions)
          .set({ revokedAt: now })
          .where(and(eq(sessions.id, session.id), isNull(sessions.revokedAt)))
          .returning({ id: sessions.id });
        // Whoever replayed it is unknown (the thief or the owner): no actor, the replay's network.
        const by = { via: 'api', actorId: null, address: input.ip } as const;
        if (ended) await recordAudit(tx, { action: 'sessions.revoked', by, targetId: session.userId, detail: 'refresh_reuse', at: now });
        return { error: invalid(), revoked: session.id };
      }
    }
    await tx.update(sessions).set({ lastUsedAt: now }).where(eq(sessions.id, session.id));
    const [user] = await tx.select().from(users).where(eq(users.id, session.userId));
    return { user: userView(user!), tokens: await issueTokens(deps, tx, session.userId, session.id, now) };
  });
  if ('revoked' in outcome && outcome.revoked) deps.sessions.forget(outcome.revoked);
  if (outcome.error) throw outcome.error;
  return { user: outcome.user!, tokens: outcome.tokens! };
}

export async function logout(deps: AuthDeps, refreshToken: string): Promise<void> {
  const hash = await hashOpaqueToken(refreshToken);
  const [row] = await deps.db
    .update(sessions)
    .set({ revokedAt: deps.clock.now() })
    .where(
      and(
        isNull(sessions.revokedAt),
        // Through eq() so the hash is bound as bytea (the column's driver form), not as text.
        inArray(sessions.id, deps.db.select({ id: refreshTokens.sessionId }).from(refreshTokens).where(eq(refreshTokens.tokenHash, hash))),
      ),
    )
    .returning({ id: sessions.id });
  if (row) deps.sessions.forget(row.id);
}

/**
 * Takes a unit of each failed-join budget (this user, this address, the whole server) before the
 * code is looked up, so concurrent attempts cannot all pass a check made before any failure was
 * counted. Over a budget: 429. Returns the refund to call when the attempt did not fail as an
 * unknown code (a join, ALREADY_MEMBER, a full orbit): only failures keep their unit.
 */
export function reserveJoinAttempt(deps: AuthDeps, userId: string | undefined, ip: string): Promise<() => Promise<void>> {
  const budget = limits(deps.config);
  const checks = [
    ...(userId ? [{ key: limitKey.joinUser(userId), window: budget.failedJoinsPerUser }] : []),
    { key: limitKey.joinIp(ip), window: budget.failedJoinsPerIp },
    { key: limitKey.joinGlobal(), window: budget.failedJoinsGlobal },
  ];
  // Someone guessing invite codes: a lockout in the audit trail.
  return reserve(deps.limiter, deps.clock, checks).catch(auditLockout(deps, checks, { actorId: userId, address: ip }));
}

/** Runs a join attempt within the failed-join budgets: an unknown code keeps its unit, anything else gives it back. */
export async function withinJoinBudget<T>(deps: AuthDeps, userId: string | undefined, ip: string, attempt: () => Promise<T>): Promise<T> {
  const refund = await reserveJoinAttempt(deps, userId, ip);
  try {
    const out = await attempt();
    await refund();
    return out;
  } catch (err) {
    if (!(err instanceof AppError && err.code === 'NOT_FOUND')) await refund();
    throw err;
  }
}
