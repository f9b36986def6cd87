// Orbits: create, list, get, join.
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { countFailedJoin, ensureJoinBudget } from '../../domain/auth';
import { AppError } from '../../domain/errors';
import { createGroup, getGroup, joinByInvite, listGroups, requireMember, requireOwner } from '../../domain/groups';
import { deliverKeys } from '../../domain/keys';
import { createInvite, inviteView } from '../../domain/invites';
import { write } from '../../domain/tx';
import type { AppEnv } from '../../http/env';
import { idempotent } from '../../http/idempotency';
import { defineRoute } from '../../http/route';
import { CreateGroupBody, CreateInviteBody, DeliverKeysBody, Group, GroupItem, groupIdParam, Invite, JoinBody, memberParams } from './schemas';

const json = <T>(schema: T) => ({ content: { 'application/json': { schema } }, required: true });
const ok = <T>(description: string, schema: T) => ({ description, content: { 'application/json': { schema } } });

const createRoute = defineRoute({
  method: 'post',
  path: '/api/groups',
  tags: ['orbits'],
  summary: 'Create an orbit; the caller becomes its owner at key epoch 1',
  request: { body: json(CreateGroupBody) },
  responses: { 201: ok('created', z.object({ group: Group, invite: Invite })) },
});

const listRoute = defineRoute({
  method: 'get',
  path: '/api/groups',
  tags: ['orbits'],
  summary: "The caller's orbits",
  responses: { 200: ok('orbits', z.object({ items: z.array(GroupItem) })) },
});

const getRoute = defineRoute({
  method: 'get',
  path: '/api/groups/{groupId}',
  tags: ['orbits'],
  summary: 'One orbit',
  request: { params: groupIdParam },
  responses: { 200: ok('orbit', Group) },
});

const joinRoute = defineRoute({
  method: 'post',
  path: '/api/groups/join',
  tags: ['orbits'],
  summary: 'Join with an invite code (key pending until a member delivers it)',
  request: { body: json(JoinBody) },
  responses: { 200: ok('joined', z.object({ group: Group, key_status: z.literal('pending') })) },
});

const createInviteRoute = defineRoute({
  method: 'post',
  path: '/api/groups/{groupId}/invites',
  tags: ['invites'],
  summary: 'Create an invite code (owner)',
  request: { params: groupIdParam, body: { content: { 'application/json': { schema: CreateInviteBody } }, required: false } },
  responses: { 201: ok('invite', Invite) },
});

const deliverKeysRoute = defineRoute({
  method: 'put',
  path: '/api/groups/{groupId}/members/{userId}/keys',
  tags: ['keys'],
  summary: "Deliver a member's wrapped orbit keys for epochs that have none",
  request: { params: memberParams, body: json(DeliverKeysBody) },
  responses: { 204: { description: 'delivered' } },
});

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(createRoute, async (c) => {
    const deps = c.get('deps');
    const body = c.req.valid('json');
    const { userId } = c.get('auth');
    return await idempotent(
      c,
      body,
      async () => {
        const out = await write(deps, (tx) =>
          createGroup(tx, deps.config, {
            userId,
            encryptedName: body.encrypted_name,
            encryptedGroupKey: body.encrypted_group_key,
            keyCheck: body.key_check,
            now: deps.clock.now(),
          }),
        );
        const group = await getGroup(deps.db, out.group.id, userId);
        return { status: 201, body: { group, invite: inviteView(out.invite.row, out.invite.code) }, resourceId: out.group.id };
      },
    ) as never;
  });

  app.openapi(listRoute, async (c) => {
    const { db } = c.get('deps');
    return c.json({ items: await listGroups(db, c.get('auth').userId) }, 200);
  });

  app.openapi(getRoute, async (c) => {
    const { db } = c.get('deps');
    return c.json(await getGroup(db, c.req.valid('param').groupId, c.get('auth').userId), 200);
  });

  app.openapi(joinRoute, async (c) => {
    const deps = c.get('deps');
    const { userId } = c.get('auth');
    const ip = deps.clientIp(c);
    await ensureJoinBudget(deps, userId, ip);
    try {
      const { group } = await write(deps, async (tx, outbox) => {
        const joined = await joinByInvite(tx, deps.config.jwtSecret, { userId, code: c.req.valid('json').invite_code, now: deps.clock.now() });
        outbox.add(joined.event);
        return joined;
      });
      return c.json({ group: await getGroup(deps.db, group.id, userId), key_status: 'pending' as const }, 200);
    } catch (err) {
      if (err instanceof AppError && err.code === 'NOT_FOUND') await countFailedJoin(deps, userId, ip);
      throw err;
    }
  });

  app.openapi(createInviteRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId } = c.req.valid('param');
    const body = c.req.valid('json') ?? {};
    const { userId } = c.get('auth');
    return await idempotent(c, { groupId, ...body }, async () => {
      const invite = await write(deps, async (tx) => {
        await requireOwner(tx, groupId, userId);
        return createInvite(tx, deps.config.jwtSecret, {
          groupId,
          createdBy: userId,
          now: deps.clock.now(),
          expiresInSec: body.expires_in_seconds,
          maxUses: body.max_uses,
        });
      });
      return { status: 201, body: inviteView(invite.row, invite.code) };
    }) as never;
  });

  app.openapi(deliverKeysRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId, userId: memberId } = c.req.valid('param');
    const { userId } = c.get('auth');
    await write(deps, async (tx, outbox) => {
      const caller = await requireMember(tx, groupId, userId);
      outbox.add(await deliverKeys(tx, { caller, memberId, keys: c.req.valid('json').keys, now: deps.clock.now() }));
    });
    return c.body(null, 204);
  });
}
