// Wrapped orbit keys: delivery to a member, the caller's own wraps, and the owner's rotation.
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { getGroup, requireMember } from '../../domain/groups';
import { deliverKeys, listOwnKeys, rotateKeys } from '../../domain/keys';
import { write } from '../../domain/tx';
import { decodeCursor, pageOf } from '../../http/cursor';
import type { AppEnv } from '../../http/env';
import { defineRoute } from '../../http/route';
import { jsonBody, jsonResponse, noContent, pageQuery } from './common';
import { DeliverKeysBody, Group, groupIdParam, memberParams, OwnKeyPage, RotateKeysBody, ROTATION_MAX_BODY } from './schemas';
import { witness } from '../../http/witness';

/** The last key_epoch of the previous page (an int4 column: larger numbers are not cursors). */
const epochCursor = z.tuple([z.number().int().min(0).max(2_147_483_647)]);

const deliverRoute = defineRoute({
  method: 'put',
  path: '/api/groups/{groupId}/members/{userId}/keys',
  operationId: 'keys.deliver',
  errors: ['FORBIDDEN', 'KEY_PENDING', 'CONFLICT'],
  tags: ['keys'],
  summary: "Deliver a member's wrapped orbit keys for epochs that have none",
  description:
    'All or nothing: if any (member, epoch) pair already has a key the answer is 409 CONFLICT (details.delivered_key_epochs) and nothing is written; a key is never overwritten. A member may deliver its own key, even while pending; delivering for someone else needs the key of each epoch delivered (403 KEY_PENDING for a pending caller). Emits `member_key_delivered` with `{user_id, key_epochs}` only.',
  request: { params: memberParams, body: jsonBody(DeliverKeysBody) },
  responses: noContent('delivered'),
});

const listRoute = defineRoute({
  method: 'get',
  path: '/api/groups/{groupId}/keys',
  operationId: 'keys.listOrbitKeys',
  tags: ['keys'],
  summary: "The caller's own wrapped orbit keys, oldest epoch first",
  request: { params: groupIdParam, query: pageQuery },
  responses: { 200: jsonResponse('wrapped keys', OwnKeyPage) },
});

const rotateRoute = defineRoute({
  method: 'post',
  path: '/api/groups/{groupId}/keys',
  operationId: 'keys.rotate',
  errors: ['FORBIDDEN', 'KEY_PENDING', 'CONFLICT'],
  tags: ['keys'],
  summary: 'Rotate to the next key epoch (owner)',
  description:
    '`key_epoch` must be the current epoch + 1 (else 409 with details.current_key_epoch). `keys` must cover exactly the members holding the current key, the owner included (else 409 with details.expected_user_ids). Members still pending stay pending at the new epoch. Emits `key_rotated` with `{key_epoch, previous_key_epoch, key_check, user_ids}`; members fetch their new wrap with GET /keys. Answers the orbit as the owner now sees it.',
  maxBody: ROTATION_MAX_BODY,
  request: { params: groupIdParam, body: jsonBody(RotateKeysBody) },
  responses: { 201: jsonResponse('rotated', Group) },
});

export function registerKeys(app: OpenAPIHono<AppEnv>) {
  app.openapi(deliverRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId, userId: memberId } = c.req.valid('param');
    const { userId } = c.get('auth');
    await write(deps, async (tx, outbox) => {
      outbox.add(await deliverKeys(tx, { groupId, callerId: userId, memberId, keys: c.req.valid('json').keys, now: deps.clock.now() }));
    });
    return c.body(null, 204);
  });

  app.openapi(listRoute, async (c) => {
    const { db } = c.get('deps');
    const { groupId } = c.req.valid('param');
    const { userId } = c.get('auth');
    const { limit, cursor } = c.req.valid('query');
    const after = decodeCursor(cursor, epochCursor);
    await requireMember(db, groupId, userId);
    const rows = await listOwnKeys(db, groupId, userId, { limit, afterEpoch: after?.[0] });
    return c.json(pageOf(rows, limit, (k) => [k.key_epoch]), 200);
  });

  app.openapi(rotateRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId } = c.req.valid('param');
    const { userId } = c.get('auth');
    const body = c.req.valid('json');
    await write(deps, async (tx, outbox) => {
      outbox.add(
        await rotateKeys(tx, { groupId, actorId: userId, keyEpoch: body.key_epoch, keys: body.keys, keyCheck: body.key_check, now: deps.clock.now(), by: witness(c) }),
      );
    });
    return c.json(await getGroup(deps.db, groupId, userId), 201);
  });
}
