// The cap of live sockets per user per orbit across Node processes and nodes: one lease row per
// open socket in Postgres. A process renews its own rows while it runs, so the rows of a process
// that crashed stop counting once they expire; a socket's row goes when it closes.
import { inArray, lte, sql } from 'drizzle-orm';
import { liveSocketLeases } from '../../db/schema';
import type { Db } from '../../deps';
import { LIVE } from './protocol';

/** How long a lease counts without renewal (its process renews every third of it). */
export const LEASE_TTL_MS = 30_000;

const expiry = (ttlMs: number) => sql`now() + make_interval(secs => ${ttlMs / 1000})`;

/**
 * A lease for one more socket of this user in this orbit; null when the user already holds the
 * most. One round trip to a function (migration 0006) that takes a transaction-scoped advisory
 * lock on (orbit, user), so concurrent upgrades on any process count one after another. No row
 * lock on the orbit or member: removal holds those. Expired leases do not count.
 */
export async function takeLease(db: Db, input: { groupId: string; userId: string; holder: string; ttlMs: number }): Promise<string | null> {
  const { groupId, userId, holder, ttlMs } = input;
  const { rows } = (await db.execute(
    sql`select take_live_socket_lease(${groupId}::uuid, ${userId}::uuid, ${holder}::uuid, ${ttlMs / 1000}::float8, ${LIVE.socketsPerUser}::int) as id`,
  )) as unknown as { rows: Array<{ id: string | null }> };
  return rows[0]?.id ?? null;
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
