// The live socket: POST /api/groups/:groupId/live/ticket and GET /api/groups/:groupId/live (upgrade).
// Everything that can refuse (auth, session, membership, socket cap) happens before the upgrade,
// so refusals are plain HTTP in the contract's error shape.
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { Deps } from '../../deps';
import { AppError, sessionEnded } from '../../domain/errors';
import { requireMember } from '../../domain/groups';
import { issueTicket, redeemTicket } from '../../domain/live/tickets';
import { authenticate, isSessionLive } from '../../domain/sessions';
import { ACCESS_TTL_SEC } from '../../domain/tokens';
import { bearerToken } from '../../http/auth';
import type { AppEnv } from '../../http/env';
import { defineRoute } from '../../http/route';
import { groupIdParam } from '../groups/schemas';
import { LIVE_PROTOCOL, LiveQuery, TicketResponse } from './schemas';

const ticketRoute = defineRoute({
  method: 'post',
  path: '/api/groups/{groupId}/live/ticket',
  operationId: 'live.ticket',
  tags: ['live'],
  summary: 'A single-use ticket (30 s) for opening the live socket without an Authorization header',
  request: { params: groupIdParam },
  responses: { 200: { description: 'ticket', content: { 'application/json': { schema: TicketResponse } } } },
});

const liveRoute = defineRoute({
  method: 'get',
  path: '/api/groups/{groupId}/live',
  operationId: 'live.connect',
  errors: ['UNAUTHENTICATED', 'TOKEN_EXPIRED', 'NOT_FOUND', 'RATE_LIMITED'],
  tags: ['live'],
  summary: "The orbit's live event socket",
  description: LIVE_PROTOCOL,
  // Authenticates itself: it also accepts ?ticket=.
  public: true,
  request: { params: groupIdParam, query: LiveQuery },
  responses: { 101: { description: 'Switching Protocols: the live socket' } },
});
// The socket accepts a bearer header too: document it beside the ticket.
(liveRoute as { security?: unknown }).security = [{ bearer: [] }, {}];

interface LiveIdentity {
  userId: string;
  sessionId: string;
  tokenExpiresAt: number;
}

async function identify(c: Context<AppEnv>, deps: Deps, groupId: string, ticket: string | undefined): Promise<LiveIdentity> {
  const header = c.req.header('authorization');
  if (header) {
    const token = bearerToken(header);
    if (!token) throw new AppError('UNAUTHENTICATED', 'An access token is required.');
    const claims = await authenticate(deps, token);
    return { userId: claims.userId, sessionId: claims.sessionId, tokenExpiresAt: claims.expiresAt };
  }
  if (ticket === undefined) throw new AppError('UNAUTHENTICATED', 'An access token or a live ticket is required.');
  // A ticket is used up by its first use: not on a request that could never become a socket.
  requireUpgrade(c);
  const now = deps.clock.now();
  const redeemed = await redeemTicket(deps.db, ticket, groupId, now);
  if (!redeemed) throw new AppError('UNAUTHENTICATED', 'This ticket is unknown, used or expired.');
  if (!(await isSessionLive(deps, redeemed.sessionId, redeemed.userId))) {
    throw sessionEnded();
  }
  // A ticket stands for the access token it was bought with: one token lifetime from now.
  return { ...redeemed, tokenExpiresAt: Math.floor(now.getTime() / 1000) + ACCESS_TTL_SEC };
}

const isUpgrade = (c: Context<AppEnv>) => c.get('deps').live.canUpgrade(c);

function requireUpgrade(c: Context<AppEnv>) {
  if (!isUpgrade(c)) {
    throw new AppError('VALIDATION_ERROR', 'This endpoint is a WebSocket: send Upgrade: websocket.');
  }
}

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(ticketRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId } = c.req.valid('param');
    const { userId, sessionId } = c.get('auth');
    await requireMember(deps.db, groupId, userId);
    const { ticket, expiresIn } = await issueTicket(deps.db, { userId, sessionId, groupId, now: deps.clock.now() });
    return c.json({ ticket, expires_in: expiresIn as 30 }, 200);
  });

  app.openapi(liveRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId } = c.req.valid('param');
    const { after_seq: afterSeq, ticket } = c.req.valid('query');
    const who = await identify(c, deps, groupId, ticket);
    c.set('auth', { userId: who.userId, sessionId: who.sessionId, expiresAt: who.tokenExpiresAt });
    c.header('Cache-Control', 'no-store');
    // An outsider learns nothing more from a plain GET than from an upgrade: 404 before 400.
    if (!isUpgrade(c)) await requireMember(deps.db, groupId, who.userId);
    requireUpgrade(c);
    // The gateway checks membership and the socket cap as it accepts, and takes the socket's
    // starting point with the membership in one snapshot, so a removal racing this upgrade cannot
    // slip between.
    return (await deps.live.upgrade(c, { groupId, ...who, afterSeq: afterSeq ?? null })) as never;
  });
}
