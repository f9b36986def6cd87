// PUT /api/users/me/public-key · PUT|GET /api/users/me/key-backup · GET /api/users/:userId/public-key
import type { OpenAPIHono } from '@hono/zod-openapi';
import { coMemberPublicKey, getKeyBackup, putKeyBackup, replacePublicKey } from '../../domain/user-keys';
import type { AppEnv } from '../../http/env';
import { defineRoute, jsonBody, jsonResponse } from '../../http/route';
import { CoMemberKey, KeyBackup, PublicKeyBody, userIdParam } from './schemas';

const replaceKeyRoute = defineRoute({
  method: 'put',
  path: '/api/users/me/public-key',
  operationId: 'keys.setPublicKey',
  errors: ['CONFLICT'],
  tags: ['keys'],
  summary: 'Replace the public key (lost device without a backup)',
  description: 'key_version goes up by one, every membership returns to pending at every epoch, and each orbit gets member_key_reset.',
  request: { body: jsonBody(PublicKeyBody) },
  responses: { 204: { description: 'replaced' } },
});

const putBackupRoute = defineRoute({
  method: 'put',
  path: '/api/users/me/key-backup',
  operationId: 'keys.setBackup',
  errors: ['CONFLICT'],
  tags: ['keys'],
  summary: 'Store (or replace) the encrypted private-key backup',
  request: { body: jsonBody(KeyBackup) },
  responses: { 204: { description: 'stored' } },
});

const getBackupRoute = defineRoute({
  method: 'get',
  path: '/api/users/me/key-backup',
  operationId: 'keys.getBackup',
  errors: ['NOT_FOUND'],
  tags: ['keys'],
  summary: 'The encrypted private-key backup (404 when none is stored)',
  responses: { 200: jsonResponse('backup', KeyBackup) },
});

const coMemberKeyRoute = defineRoute({
  method: 'get',
  path: '/api/users/{userId}/public-key',
  operationId: 'keys.getPublicKey',
  tags: ['keys'],
  summary: 'A co-member’s public key',
  description: 'Only for a user who shares an orbit with the caller (or the caller: `me`); anyone else is 404.',
  request: { params: userIdParam },
  responses: { 200: jsonResponse('public key', CoMemberKey) },
});

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(replaceKeyRoute, async (c) => {
    await replacePublicKey(c.get('deps'), c.get('auth').userId, c.req.valid('json').public_key);
    return c.body(null, 204);
  });

  app.openapi(putBackupRoute, async (c) => {
    await putKeyBackup(c.get('deps').db, c.get('auth').userId, c.req.valid('json'));
    return c.body(null, 204);
  });

  app.openapi(getBackupRoute, async (c) => c.json(await getKeyBackup(c.get('deps').db, c.get('auth').userId), 200));

  app.openapi(coMemberKeyRoute, async (c) => {
    const { userId: callerId } = c.get('auth');
    const { userId } = c.req.valid('param');
    return c.json(await coMemberPublicKey(c.get('deps').db, callerId, userId === 'me' ? callerId : userId), 200);
  });
}
