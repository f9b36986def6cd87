// Invites (owner): create, list the active ones, revoke.
import type { OpenAPIHono } from '@hono/zod-openapi';
import { lockGroup, requireOwner, requireOwnerWriter } from '../../domain/groups';
import { createInvite, inviteById, inviteView, listActiveInvites, MAX_ACTIVE_INVITES, revokeInvite } from '../../domain/invites';
import { write } from '../../domain/tx';
import { decodeCursor, pageOf, timeIdCursor } from '../../http/cursor';
import type { AppEnv } from '../../http/env';
import { idempotent } from '../../http/idempotency';
import { defineRoute } from '../../http/route';
import { jsonResponse, noContent, pageQuery } from './common';
import { CreateInviteBody, groupIdParam, Invite, inviteParams, InvitePage } from './schemas';
import { witness } from '../../http/witness';

const createRoute = defineRoute({
  method: 'post',
  path: '/api/groups/{groupId}/invites',
  operationId: 'invites.create',
  errors: ['FORBIDDEN', 'KEY_PENDING'],
  idempotent: true,
  tags: ['invites'],
  summary: 'Create an invite code (owner)',
  description: `At most ${MAX_ACTIVE_INVITES} active (unrevoked, unexpired, not used up) invites per orbit; one more is 409 CONFLICT. The code appears only in this answer: a retry with the same Idempotency-Key answers the invite as it is now, without its code, and 404 once it is revoked.`,
  request: { params: groupIdParam, body: { content: { 'application/json': { schema: CreateInviteBody } }, required: false } },
  responses: { 201: jsonResponse('invite', Invite) },
});

const listRoute = defineRoute({
  method: 'get',
  path: '/api/groups/{groupId}/invites',
  operationId: 'invites.list',
  errors: ['FORBIDDEN'],
  tags: ['invites'],
  summary: 'Active invites, oldest first (owner)',
  description:
    'Deviation from the contract\'s invite shape: the server stores only a keyed hash of each code, so listed invites carry `code: null` and `code_hint` (the first two characters); revoke them by `id`.',
  request: { params: groupIdParam, query: pageQuery },
  responses: { 200: jsonResponse('active invites', InvitePage) },
});

const revokeRoute = defineRoute({
  method: 'delete',
  path: '/api/groups/{groupId}/invites/{code}',
  operationId: 'invites.revoke',
  errors: ['FORBIDDEN', 'KEY_PENDING'],
  tags: ['invites'],
  summary: 'Revoke an invite by its code or its id (owner)',
  description: 'Revoking an invite that has already expired, been used up or been revoked is a no-op (204); an invite this orbit never had is 404.',
  request: { params: inviteParams },
  responses: noContent('revoked'),
});

export function registerInvites(app: OpenAPIHono<AppEnv>) {
  app.openapi(createRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId } = c.req.valid('param');
    const body = c.req.valid('json') ?? {};
    const { userId } = c.get('auth');
    return await idempotent(
      c,
      { groupId, ...body },
      {
        async write(tx) {
          // The orbit row's lock makes the active-invite count and the insert one step.
          await lockGroup(tx, groupId);
          await requireOwnerWriter(tx, groupId, userId);
          return createInvite(tx, deps.config.jwtSecret, {
            groupId,
            createdBy: userId,
            now: deps.clock.now(),
            expiresInSec: body.expires_in_seconds,
            maxUses: body.max_uses,
            by: witness(c),
          });
        },
        answer: (invite) => ({ status: 201, body: inviteView(invite.row, invite.code), resourceId: invite.row.id }),
      },
      // A retry gets the invite as it is now, without its code: codes are never stored. A revoked
      // one answers 404, as the owner deleted it.
      (id) => inviteById(deps.db, groupId, id, { revokedIsGone: true }),
    ) as never;
  });

  app.openapi(listRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId } = c.req.valid('param');
    const { limit, cursor } = c.req.valid('query');
    const after = decodeCursor(cursor, timeIdCursor);
    await requireOwner(deps.db, groupId, c.get('auth').userId);
    const rows = await listActiveInvites(deps.db, groupId, deps.clock.now(), { limit, after });
    const page = pageOf(rows, limit, (i) => [i.cursorAt, i.id]);
    return c.json({ items: page.items.map(({ cursorAt: _, ...i }) => i), next_cursor: page.next_cursor }, 200);
  });

  app.openapi(revokeRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId, code } = c.req.valid('param');
    await write(deps, async (tx) => {
      await requireOwnerWriter(tx, groupId, c.get('auth').userId);
      await revokeInvite(tx, deps.config.jwtSecret, { groupId, codeOrId: code, now: deps.clock.now(), by: witness(c) });
    });
    return c.body(null, 204);
  });
}
