// Live tickets: for clients that cannot set headers on a WebSocket (browsers). Single use, 30 s,
// bound to user, session and orbit, stored only as a hash; redeemed by one conditional UPDATE.
import { and, eq, gt, isNull } from 'drizzle-orm';
import { liveTickets } from '../../db/schema';
import type { Executor } from '../../deps';
import { hashOpaqueToken, newOpaqueToken } from '../tokens';
import { LIVE } from './protocol';

export async function issueTicket(
  db: Executor,
  input: { userId: string; sessionId: string; groupId: string; now: Date },
): Promise<{ ticket: string; expiresIn: number }> {
  const { token, hash } = await newOpaqueToken();
  await db.insert(liveTickets).values({
    ticketHash: hash,
    userId: input.userId,
    sessionId: input.sessionId,
    groupId: input.groupId,
    expiresAt: new Date(input.now.getTime() + LIVE.ticketTtlSec * 1000),
  });
  return { ticket: token, expiresIn: LIVE.ticketTtlSec };
}

/** Uses up a ticket for this orbit; null when unknown, used, expired or for another orbit. */
export async function redeemTicket(db: Executor, ticket: string, groupId: string, now: Date): Promise<{ userId: string; sessionId: string } | null> {
  if (!ticket || ticket.length > 128) return null;
  const [row] = await db
    .update(liveTickets)
    .set({ usedAt: now })
    .where(
      and(
        eq(liveTickets.ticketHash, await hashOpaqueToken(ticket)),
        eq(liveTickets.groupId, groupId),
        isNull(liveTickets.usedAt),
        gt(liveTickets.expiresAt, now),
      ),
    )
    .returning({ userId: liveTickets.userId, sessionId: liveTickets.sessionId });
  return row ?? null;
}
