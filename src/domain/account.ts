// The account itself: profile, password change, deletion. Password checks go through the login
// budgets (auth.ts checkPassword); every session they end is forgotten by this process at once.
import { and, eq, ne, sql } from 'drizzle-orm';
import { media, memberRemovals, orbitEvents, retiredUsernames, sessions, signalMessageRecipients, users } from '../db/schema';
import type { Deps, Executor } from '../deps';
import { checkPassword } from './auth';
import { recordAudit, type Witness } from './audit/record';
import { AppError } from './errors';
import { removeMember } from './membership';
import { removeMedia } from './quota';
import { write } from './tx';
import { orbitsOf } from './user-keys';
import { revokeSessions } from './user-sessions';
import { findUser, userView, type UserRow } from './users';

type AccountDeps = Pick<Deps, 'db' | 'config' | 'clock' | 'hasher' | 'limiter' | 'sessions' | 'fanout' | 'defer'>;

async function requireUser(deps: Pick<Deps, 'db'>, userId: string): Promise<UserRow> {
  const user = await findUser(deps.db, userId);
  // Only reachable between a deletion and the session check noticing it.
  if (!user) throw new AppError('UNAUTHENTICATED', 'This account no longer exists.');
  return user;
}

export async function getMe(deps: Pick<Deps, 'db'>, userId: string) {
  return userView(await requireUser(deps, userId));
}

/** Changes the password after checking the current one; every other session ends. */
export async function changePassword(
  deps: AccountDeps,
  input: { userId: string; sessionId: string; currentPassword: string; newPassword: string },
  by: Witness,
): Promise<void> {
  const user = await requireUser(deps, input.userId);
  await checkPassword(deps, user, user.username, input.currentPassword, { userId: user.id }, by.address);
  await setPassword(deps, user.id, input.newPassword, by, input.sessionId);
}

/** A new password; every session but `keep` ends. Also `npm run admin -- users reset-password`. */
export async function setPassword(
  deps: Pick<AccountDeps, 'db' | 'clock' | 'hasher' | 'sessions'>,
  userId: string,
  password: string,
  by: Witness,
  keep?: string,
): Promise<void> {
  const passwordHash = await deps.hasher.hash(password);
  const now = deps.clock.now();
  const ended = await deps.db.transaction(async (tx) => {
    await tx.update(users).set({ passwordHash }).where(eq(users.id, userId));
    await recordAudit(tx, { action: 'password.changed', by, targetId: userId, detail: by.via === 'admin' ? 'reset' : 'changed', at: now });
    return revokeSessions(tx, userId, now, keep);
  });
  for (const id of ended) deps.sessions.forget(id);
}

/** Fields of stored events that name a person; the views show them null once the account is gone. */
const IDENTITY_FIELDS = ['username', 'author_username', 'author_id', 'public_key'];

/** Removes an account's name, key and id from every event it wrote, as thread deletion scrubs content. */
async function scrubIdentity(tx: Executor, userId: string, options: { keepLeaves?: boolean } = {}): Promise<void> {
  const names = sql.join(IDENTITY_FIELDS.map((f) => sql`${f}`), sql`, `);
  await tx
    .update(orbitEvents)
    .set({
      actorId: null,
      data: sql`coalesce((select jsonb_object_agg(k, case when k in (${names}) then 'null'::jsonb else v end) from jsonb_each(${orbitEvents.data}) as f(k, v)), '{}'::jsonb)`,
    })
    .where(and(eq(orbitEvents.actorId, userId), options.keepLeaves ? ne(orbitEvents.type, 'member_left') : undefined));
}

/**
 * Deletes the account after checking its password. Each membership ends as if the user left
 * (reason "deleted": ownership handed on, a last member takes the orbit along), open uploads are
 * aborted, the username is retired, its events lose its name and key, and the user row goes: threads, replies, media and messages
 * keep `author_id: null` (foreign keys set null); sessions, keys and read markers cascade.
 */
export async function deleteAccount(deps: AccountDeps, input: { userId: string; password: string }, by: Witness): Promise<void> {
  const user = await requireUser(deps, input.userId);
  await checkPassword(deps, user, user.username, input.password, { userId: user.id }, by.address);
  await eraseAccount(deps, user, by);
}

/** deleteAccount once the password is checked; `npm run admin -- users delete` starts here. */
export async function eraseAccount(deps: Omit<AccountDeps, 'hasher' | 'limiter'>, user: UserRow, by: Witness): Promise<void> {
  const now = deps.clock.now();
  const ended = await write(deps, async (tx, outbox) => {
    // Holds off this user's upload starts, key resets and orbit creations. Not FOR UPDATE yet:
    // the user's writes in flight hold an orbit's row and then check their foreign key to this
    // row (key share), so taking it exclusively before the orbits deadlocks with them.
    const [locked] = await tx.select({ id: users.id }).from(users).where(eq(users.id, user.id)).for('no key update');
    if (!locked) throw new AppError('UNAUTHENTICATED', 'This account no longer exists.');
    // Earlier events keep ids only: names and keys go, in every orbit, left ones included.
    await scrubIdentity(tx, user.id);
    const leaveAll = async () => {
      for (const groupId of await orbitsOf(tx, user.id)) {
        const out = await removeMember(tx, { groupId, userId: user.id, actorId: user.id, reason: 'deleted', now, by });
        outbox.add(...out.events);
      }
    };
    await leaveAll();
    // Now exclusively (holds off joins until the row is gone), and once more for a join that
    // committed in between.
    await tx.select({ id: users.id }).from(users).where(eq(users.id, user.id)).for('update');
    await leaveAll();
    // Writes in flight at the first scrub have committed by now (leaving waited for them).
    await scrubIdentity(tx, user.id, { keepLeaves: true });
    // removeMember aborted the uploads in each orbit; this catches any left outside one.
    await removeMedia(tx, and(eq(media.authorId, user.id), eq(media.status, 'uploading'))!, now);
    // Rows keyed by this user without a foreign key: nobody can use them any more.
    await tx.delete(signalMessageRecipients).where(eq(signalMessageRecipients.userId, user.id));
    await tx.delete(memberRemovals).where(eq(memberRemovals.userId, user.id));
    await tx.insert(retiredUsernames).values({ usernameLower: user.usernameLower, retiredAt: now }).onConflictDoNothing();
    const gone = await tx.select({ id: sessions.id }).from(sessions).where(eq(sessions.userId, user.id));
    await tx.delete(users).where(eq(users.id, user.id));
    await recordAudit(tx, { action: 'account.deleted', by, targetId: user.id, at: now });
    return gone.map((s) => s.id);
  });
  for (const id of ended) deps.sessions.forget(id);
}
