// The cap of live sockets per user per orbit across Node processes and nodes: one lease row per
// open socket in Postgres. A process renews its own rows while it runs, so the rows of a process
// that crashed stop counting once they expire; a socket's row goes when it closes.
import { and, gt, inArray, lte, sql } from 'drizzle-orm';
import { liveSocketLeases } from '../../db/schema';
import type { Db } from '../../deps';
import { statement } from '../../db/statement';
import { noSuchOrbit, sessionEnded } from '../errors';
import type { StartingPoint } from './access';
import { LIVE, tooManySockets } from './protocol';

/** How long a lease counts without renewal (its process renews every third of it). */
export const LEASE_TTL_MS = 30_000;

const expiry = (ttlMs: number) => sql`now() + make_interval(secs => ${ttlMs / 1000})`;

/** A member's socket let in: its lease, and where its events start (read with the membership). */
export interface Admission {
  lease: string;
  start: StartingPoint & { joinedAt: number };
}

// Built once (src/db/statement.ts): every socket let in runs it.
const openSocket = statement<{ joined: Date | string | null; head: string | number | null; session_live: boolean | null; lease: string | null }>(
  () =>
    sql`select joined, head, session_live, lease from open_live_socket(${sql.placeholder('group')}::uuid, ${sql.placeholder('user')}::uuid, ${sql.placeholder('session')}::uuid,
      ${sql.placeholder('holder')}::uuid, ${sql.placeholder('ttl')}::float8, ${sql.placeholder('cap')}::int)`,
);

/**
 * Lets one more socket of this user into this orbit, in one round trip (migration 0007): the
 * orbit's head, the membership and the session in one snapshot, then a lease under a
 * transaction-scoped advisory lock on (orbit, user), so concurrent upgrades on any process count
 * one after another (migration 0006). No row lock on the orbit or member: removal holds those.
 * Expired leases do not count. NOT_FOUND for an outsider, RATE_LIMITED past the cap.
 */
export async function admitSocket(
  db: Db,
  input: { groupId: string; userId: string; sessionId: string; holder: string; ttlMs: number },
): Promise<Admission> {
  const { groupId, userId, sessionId, holder, ttlMs } = input;
  const [row] = await openSocket.run(db, { group: groupId, user: userId, session: sessionId, holder, ttl: ttlMs / 1000, cap: LIVE.socketsPerUser });
  if (!row?.joined) throw noSuchOrbit();
  if (!row.session_live) throw sessionEnded();
  if (!row.lease) throw tooManySockets();
  return { lease: row.lease, start: { last: Number(row.head), joinedAt: new Date(row.joined).getTime(), sessionLive: true } };
}

export async function releaseLeases(db: Db, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 1000) await db.delete(liveSocketLeases).where(inArray(liveSocketLeases.id, ids.slice(i, i + 1000)));
}

/**
 * Pushes the expiry of these leases forward and drops every expired one (crashed processes').
 * Returns the ids renewed: one missing expired, its holder having gone a TTL without renewing it
 * (stalled, or cut off from the database), and may have been dropped by some process.
 */
export async function renewLeases(db: Db, ids: string[], ttlMs: number): Promise<Set<string>> {
  const renewed = new Set<string>();
  for (let i = 0; i < ids.length; i += 1000) {
    const rows = await db
      .update(liveSocketLeases)
      .set({ expiresAt: expiry(ttlMs) })
      // An expired row no longer counted (admission skips it), so it is not brought back: other
      // sockets may have taken its place meanwhile.
      .where(and(inArray(liveSocketLeases.id, ids.slice(i, i + 1000)), gt(liveSocketLeases.expiresAt, sql`now()`)))
      .returning({ id: liveSocketLeases.id });
    for (const { id } of rows) renewed.add(id);
  }
  await db.delete(liveSocketLeases).where(lte(liveSocketLeases.expiresAt, sql`now()`));
  return renewed;
}
