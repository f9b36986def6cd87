// Orbits: create, list, get, join, rename, hand over.
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { withinJoinBudget } from '../../domain/auth';
import { createGroup, getGroup, joinByInvite, listGroups } from '../../domain/groups';
import { inviteById, inviteView } from '../../domain/invites';
import { renameGroup, transferOwnership } from '../../domain/orbit-admin';
import { write } from '../../domain/tx';
import type { AppEnv } from '../../http/env';
import { idempotent } from '../../http/idempotency';
import { defineRoute } from '../../http/route';
import { jsonBody, jsonResponse, noContent } from './common';
import { CreateGroupBody, Group, GroupItem, groupIdParam, Invite, JoinBody, TransferOwnerBody, UpdateGroupBody } from './schemas';
import { witness } from '../../http/witness';

const createRoute = defineRoute({
  method: 'post',
  path: '/api/groups',
  operationId: 'orbits.create',
  errors: ['FORBIDDEN'],
  idempotent: true,
  tags: ['orbits'],
  summary: 'Create an orbit; the caller becomes its owner at key epoch 1 (Idempotency-Key supported)',
  description:
    'A user owns at most MAX_OWNED_GROUPS orbits (409 CONFLICT with details.max_owned_groups). A retry with the same Idempotency-Key answers 201 with the orbit and its first invite as they are now, with `invite.code: null` (codes are shown once and never stored); 404 when the orbit is gone.',
  request: { body: jsonBody(CreateGroupBody) },
  responses: { 201: jsonResponse('created', z.object({ group: Group, invite: Invite })) },
});

const listRoute = defineRoute({
  method: 'get',
  path: '/api/groups',
  operationId: 'orbits.list',
  tags: ['orbits'],
  summary: "The caller's orbits",
  responses: { 200: jsonResponse('orbits', z.object({ items: z.array(GroupItem) })) },
});

const getRoute = defineRoute({
  method: 'get',
  path: '/api/groups/{groupId}',
  operationId: 'orbits.get',
  tags: ['orbits'],
  summary: 'One orbit',
  request: { params: groupIdParam },
  responses: { 200: jsonResponse('orbit', Group) },
});

const joinRoute = defineRoute({
  method: 'post',
  path: '/api/groups/join',
  operationId: 'orbits.join',
  errors: ['NOT_FOUND', 'ALREADY_MEMBER', 'CONFLICT', 'FORBIDDEN', 'GONE'],
  tags: ['orbits'],
  summary: 'Join with an invite code (key pending until a member delivers it)',
  description:
    'Unknown, expired, revoked and used-up codes, and codes created before the caller was removed from the orbit, all answer 404; each such failure counts against the per-user, per-IP and global join budgets (429 when spent).',
  request: { body: jsonBody(JoinBody) },
  responses: { 200: jsonResponse('joined', z.object({ group: Group, key_status: z.literal('pending') })) },
});

const updateRoute = defineRoute({
  method: 'patch',
  path: '/api/groups/{groupId}',
  operationId: 'orbits.update',
  errors: ['FORBIDDEN', 'KEY_PENDING', 'CONFLICT'],
  tags: ['orbits'],
  summary: 'Rename the orbit (owner)',
  description: 'Emits `group_updated` with `{id, encrypted_name, reason: "renamed"}`.',
  request: { params: groupIdParam, body: jsonBody(UpdateGroupBody) },
  responses: { 200: jsonResponse('the orbit as the caller sees it', Group) },
});

const transferRoute = defineRoute({
  method: 'put',
  path: '/api/groups/{groupId}/owner',
  operationId: 'orbits.transferOwnership',
  errors: ['FORBIDDEN', 'KEY_PENDING', 'CONFLICT'],
  tags: ['orbits'],
  summary: 'Hand the orbit to another member (owner)',
  description:
    'The new owner must be a member (else 404) holding the current key (else 409) and own fewer than MAX_OWNED_GROUPS orbits (else 409). The old owner stays as a member. Emits `group_updated` with `{id, owner_id, previous_owner_id, reason: "ownership_transferred"}`; naming oneself changes nothing.',
  request: { params: groupIdParam, body: jsonBody(TransferOwnerBody) },
  responses: noContent('ownership transferred'),
});

export function registerOrbits(app: OpenAPIHono<AppEnv>) {
  app.openapi(createRoute, async (c) => {
    const deps = c.get('deps');
    const body = c.req.valid('json');
    const { userId } = c.get('auth');
    return await idempotent(
      c,
      body,
      {
        write: (tx) =>
          createGroup(tx, deps.config, {
            userId,
            address: deps.clientIp(c),
            encryptedName: body.encrypted_name,
            encryptedGroupKey: body.encrypted_group_key,
            keyCheck: body.key_check,
            now: deps.clock.now(),
          }),
        async answer(out, tx) {
          const group = await getGroup(tx, out.group.id, userId);
          // A retry gets the invite without its code: the code is shown once and never stored.
          const kept = { invite_id: out.invite.row.id };
          return { status: 201, body: { group, invite: inviteView(out.invite.row, out.invite.code) }, resourceId: out.group.id, kept };
        },
      },
      async (id, kept) => ({
        group: await getGroup(deps.db, id, userId),
        invite: await inviteById(deps.db, id, (kept as { invite_id: string }).invite_id),
      }),
    ) as never;
  });

  app.openapi(listRoute, async (c) => {
    const { db } = c.get('deps');
    return c.json({ items: await listGroups(db, c.get('auth').userId) }, 200);
  });

  app.openapi(joinRoute, async (c) => {
    const deps = c.get('deps');
    const { userId } = c.get('auth');
    const ip = deps.clientIp(c);
    const { group } = await withinJoinBudget(deps, userId, ip, () =>
      write(deps, async (tx, outbox) => {
        const joined = await joinByInvite(tx, deps.config.jwtSecret, { userId, code: c.req.valid('json').invite_code, now: deps.clock.now() });
        outbox.add(joined.event);
        return joined;
      }),
    );
    return c.json({ group: await getGroup(deps.db, group.id, userId), key_status: 'pending' as const }, 200);
  });

  app.openapi(getRoute, async (c) => {
    const { db } = c.get('deps');
    return c.json(await getGroup(db, c.req.valid('param').groupId, c.get('auth').userId), 200);
  });

  app.openapi(updateRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId } = c.req.valid('param');
    const { userId } = c.get('auth');
    const { encrypted_name } = c.req.valid('json');
    await write(deps, async (tx, outbox) => {
      outbox.add(await renameGroup(tx, { groupId, actorId: userId, encryptedName: encrypted_name, now: deps.clock.now() }));
    });
    return c.json(await getGroup(deps.db, groupId, userId), 200);
  });

  app.openapi(transferRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId } = c.req.valid('param');
    const { userId } = c.get('auth');
    await write(deps, async (tx, outbox) => {
      const event = await transferOwnership(tx, deps.config, { groupId, actorId: userId, newOwnerId: c.req.valid('json').user_id, now: deps.clock.now(), by: witness(c) });
      if (event) outbox.add(event);
    });
    return c.body(null, 204);
  });
}
