// A user's public key, its replacement after a lost device, the opaque key backup, and the
// public keys of co-members.
import { and, asc, eq, exists, or, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { groupMembers, memberKeys, users } from '../db/schema';
import type { Deps, Executor } from '../deps';
import { AppError } from './errors';
import { appendEvent } from './events';
import { lockGroup } from './groups';
import type { PublicJwk } from './jwk';
import { write } from './tx';

/** Orbits of a user, in id order: the order every multi-orbit write locks them in (no deadlocks). */
export async function orbitsOf(tx: Executor, userId: string): Promise<string[]> {
  const rows = await tx.select({ groupId: groupMembers.groupId }).from(groupMembers).where(eq(groupMembers.userId, userId)).orderBy(asc(groupMembers.groupId));
  return rows.map((r) => r.groupId);
}

/**
 * Replaces the user's public key (a lost device without a backup): key_version goes up, every
 * wrapped orbit key of the user goes (so each membership is pending at every epoch), and each
 * orbit gets `member_key_reset` carrying the new key, so members see the change.
 */
export async function replacePublicKey(deps: Pick<Deps, 'db' | 'fanout' | 'defer' | 'clock'>, userId: string, publicKey: PublicJwk): Promise<void> {
  await write(deps, async (tx, outbox) => {
    const now = deps.clock.now();
    const [user] = await tx
      .update(users)
      .set({ publicKey, keyVersion: sql`${users.keyVersion} + 1` })
      .where(eq(users.id, userId))
      .returning();
    if (!user) throw new AppError('NOT_FOUND', 'No such user.');
    const orbits = await orbitsOf(tx, userId);
    // Locked before the keys go, so a delivery in flight for the old key waits and sees the reset.
    for (const groupId of orbits) await lockGroup(tx, groupId);
    await tx.delete(memberKeys).where(eq(memberKeys.userId, userId));
    for (const groupId of orbits) {
      outbox.add(
        await appendEvent(tx, {
          groupId,
          type: 'member_key_reset',
          actorId: userId,
          at: now,
          subjectId: userId,
          data: { user_id: userId, username: user.username, public_key: user.publicKey, key_version: user.keyVersion, key_status: 'pending' },
        }),
      );
    }
  });
}

export interface KeyBackup {
  backup: string;
  kdf: Record<string, unknown>;
}

export async function putKeyBackup(db: Executor, userId: string, backup: KeyBackup): Promise<void> {
  await db.update(users).set({ keyBackup: backup.backup, keyBackupKdf: backup.kdf }).where(eq(users.id, userId));
}

export async function getKeyBackup(db: Executor, userId: string): Promise<KeyBackup> {
  const [row] = await db.select({ backup: users.keyBackup, kdf: users.keyBackupKdf }).from(users).where(eq(users.id, userId));
  if (!row?.backup || !row.kdf) throw new AppError('NOT_FOUND', 'No key backup is stored.');
  return { backup: row.backup, kdf: row.kdf };
}

/** Another user's public key, only when the two share an orbit (else 404, saying nothing more); one's own always. */
export async function coMemberPublicKey(db: Executor, callerId: string, userId: string) {
  const mine = alias(groupMembers, 'mine');
  const theirs = alias(groupMembers, 'theirs');
  const shared = db
    .select({ one: sql`1` })
    .from(mine)
    .innerJoin(theirs, eq(theirs.groupId, mine.groupId))
    .where(and(eq(mine.userId, callerId), eq(theirs.userId, users.id)));
  const [row] = await db
    .select({ id: users.id, username: users.username, publicKey: users.publicKey, keyVersion: users.keyVersion })
    .from(users)
    .where(and(eq(users.id, userId), or(eq(users.id, callerId), exists(shared))));
  if (!row) throw new AppError('NOT_FOUND', 'No such user.');
  return { user_id: row.id, username: row.username, public_key: row.publicKey, key_version: row.keyVersion };
}
