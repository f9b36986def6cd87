// GET /api/users/me/sessions · DELETE /api/users/me/sessions[/:sessionId]
import type { OpenAPIHono } from '@hono/zod-openapi';
import { listSessions, revokeOtherSessions, revokeSession } from '../../domain/user-sessions';
import type { AppEnv } from '../../http/env';
import { defineRoute, jsonResponse } from '../../http/route';
import { SessionList, sessionIdParam } from './schemas';
import { witness } from '../../http/witness';

const listRoute = defineRoute({
  method: 'get',
  path: '/api/users/me/sessions',
  operationId: 'sessions.list',
  tags: ['account'],
  summary: 'The caller’s live sessions (one per device login)',
  responses: { 200: jsonResponse('sessions', SessionList) },
});

const revokeRoute = defineRoute({
  method: 'delete',
  path: '/api/users/me/sessions/{sessionId}',
  operationId: 'sessions.revoke',
  tags: ['account'],
  summary: 'End one session (its refresh token and, within 30 s, its access tokens)',
  description: 'A session of the caller that has already ended answers 204 again; any other id is 404.',
  request: { params: sessionIdParam },
  responses: { 204: { description: 'revoked' } },
});

const revokeOthersRoute = defineRoute({
  method: 'delete',
  path: '/api/users/me/sessions',
  operationId: 'sessions.revokeOthers',
  tags: ['account'],
  summary: 'End every session but the current one',
  responses: { 204: { description: 'revoked' } },
});

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(listRoute, async (c) => {
    const deps = c.get('deps');
    const { userId, sessionId } = c.get('auth');
    return c.json({ items: await listSessions(deps.db, userId, sessionId, deps.clock.now()) }, 200);
  });

  app.openapi(revokeRoute, async (c) => {
    await revokeSession(c.get('deps'), c.get('auth').userId, c.req.valid('param').sessionId, witness(c));
    return c.body(null, 204);
  });

  app.openapi(revokeOthersRoute, async (c) => {
    const { userId, sessionId } = c.get('auth');
    await revokeOtherSessions(c.get('deps'), userId, sessionId, witness(c));
    return c.body(null, 204);
  });
}
