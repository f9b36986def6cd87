// The cap of live sockets per user per orbit across Node processes and nodes: one lease row per
// open socket in Postgres. A process renews its own rows while it runs, so the rows of a process
// that crashed stop counting once they expire; a socket's row goes when it closes.
import { and, count, eq, inArray, lte, sql } from 'drizzle-orm';
import { liveSocketLeases } from '../../db/schema';
import type { Db } from '../../deps';
import { LIVE } from './protocol';

/** How long a lease counts without renewal (its process renews every third of it). */
export const LEASE_TTL_MS = 30_000;

const expiry = (ttlMs: number) => sql`now() + make_interval(secs => ${ttlMs / 1000})`;

/**
 * A lease for one more socket of this user in this orbit; null when the user already holds the
 * most. Takes a transaction-scoped advisory lock on (orbit, user), so concurrent upgrades on any
 * process count one after another. No row lock on the orbit or member: removal holds those.
 */
export async function takeLease(db: Db, input: { groupId: string; userId: string; holder: string; ttlMs: number }): Promise<string | null> {
  const { groupId, userId, holder, ttlMs } = input;
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`live:${groupId}:${userId}`}, 0))`);
    const mine = and(eq(liveSocketLeases.groupId, groupId), eq(liveSocketLeases.userId, userId));
    await tx.delete(liveSocketLeases).where(and(mine, lte(liveSocketLeases.expiresAt, sql`now()`)));
    const [held] = await tx.select({ n: count() }).from(liveSocketLeases).where(mine);
    if ((held?.n ?? 0) >= LIVE.socketsPerUser) return null;
    const [row] = await tx.insert(liveSocketLeases).values({ groupId, userId, holder, expiresAt: expiry(ttlMs) }).returning({ id: liveSocketLeases.id });
    return row!.id;
  });
}

export async function releaseLeases(db: Db, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 1000) await db.delete(liveSocketLeases).where(inArray(liveSocketLeases.id, ids.slice(i, i + 1000)));
}

/** Pushes the expiry of these leases forward and drops every expired one (crashed processes'). */
export async function renewLeases(db: Db, ids: string[], ttlMs: number): Promise<void> {
  for (let i = 0; i < ids.length; i += 1000) {
    await db.update(liveSocketLeases).set({ expiresAt: expiry(ttlMs) }).where(inArray(liveSocketLeases.id, ids.slice(i, i + 1000)));
  }
  await db.delete(liveSocketLeases).where(lte(liveSocketLeases.expiresAt, sql`now()`));
}
