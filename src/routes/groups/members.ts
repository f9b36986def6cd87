// Members: the list (with public keys and key status) and leaving / removal.
import type { OpenAPIHono } from '@hono/zod-openapi';
import { requireMember } from '../../domain/groups';
import { listMembers } from '../../domain/members';
import { leaveOrRemove } from '../../domain/membership';
import { write } from '../../domain/tx';
import { decodeCursor, pageOf, timeIdCursor } from '../../http/cursor';
import type { AppEnv } from '../../http/env';
import { defineRoute } from '../../http/route';
import { jsonResponse, noContent, pageQuery } from './common';
import { groupIdParam, memberParams, MemberPage } from './schemas';
import { witness } from '../../http/witness';

const listRoute = defineRoute({
  method: 'get',
  path: '/api/groups/{groupId}/members',
  operationId: 'members.list',
  tags: ['members'],
  summary: 'Members in join order, with their public keys and current-epoch key status',
  request: { params: groupIdParam, query: pageQuery },
  responses: { 200: jsonResponse('members', MemberPage) },
});

const removeRoute = defineRoute({
  method: 'delete',
  path: '/api/groups/{groupId}/members/{userId}',
  operationId: 'members.remove',
  errors: ['FORBIDDEN', 'KEY_PENDING', 'CONFLICT'],
  tags: ['members'],
  summary: 'Leave (yourself) or remove a member (owner)',
  description:
    'Any member may leave, pending ones too; only the owner (holding the current key) removes others (403 otherwise). The owner leaving hands ownership to the longest-standing member holding the current key (ties by user id), else the longest-standing member (`group_updated`, reason "owner_left"). The last member leaving deletes the orbit with its threads, media and blobs. A removed member cannot rejoin with an invite created before the removal. Emits `member_left` with `{user_id, reason: "left" | "removed"}`. The server does not rotate keys: the owner\'s client should.',
  request: { params: memberParams },
  responses: noContent('left or removed'),
});

export function registerMembers(app: OpenAPIHono<AppEnv>) {
  app.openapi(listRoute, async (c) => {
    const { db } = c.get('deps');
    const { groupId } = c.req.valid('param');
    const { limit, cursor } = c.req.valid('query');
    const after = decodeCursor(cursor, timeIdCursor);
    await requireMember(db, groupId, c.get('auth').userId);
    const page = pageOf(await listMembers(db, groupId, { limit, after }), limit, (m) => [m.cursorAt, m.user_id]);
    return c.json({ items: page.items.map(({ cursorAt: _, ...m }) => m), next_cursor: page.next_cursor }, 200);
  });

  app.openapi(removeRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId, userId: memberId } = c.req.valid('param');
    await write(deps, async (tx, outbox) => {
      const out = await leaveOrRemove(tx, { groupId, actorId: c.get('auth').userId, memberId, now: deps.clock.now(), by: witness(c) });
      outbox.add(...out.events);
    });
    return c.body(null, 204);
  });
}
