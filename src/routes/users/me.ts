// GET /api/users/me · PUT /api/users/me/password · DELETE /api/users/me
import type { OpenAPIHono } from '@hono/zod-openapi';
import { changePassword, deleteAccount, getMe } from '../../domain/account';
import type { AppEnv } from '../../http/env';
import { defineRoute, jsonBody, jsonResponse } from '../../http/route';
import { DeleteAccountBody, PasswordBody, User } from './schemas';
import { witness } from '../../http/witness';

const meRoute = defineRoute({
  method: 'get',
  path: '/api/users/me',
  operationId: 'account.get',
  tags: ['account'],
  summary: 'The caller’s account',
  responses: { 200: jsonResponse('account', User) },
});

const passwordRoute = defineRoute({
  method: 'put',
  path: '/api/users/me/password',
  operationId: 'account.changePassword',
  errors: ['INVALID_CREDENTIALS'],
  tags: ['account'],
  summary: 'Change the password; every other session ends',
  description:
    "The current password is checked against the account's own budget (10 failures per 15 min, reachable only with a session of the account), and failures count towards the username's login slowdown. Strangers cannot block it.",
  request: { body: jsonBody(PasswordBody) },
  responses: { 204: { description: 'changed' } },
});

const deleteRoute = defineRoute({
  method: 'delete',
  path: '/api/users/me',
  operationId: 'account.delete',
  errors: ['INVALID_CREDENTIALS', 'CONFLICT'],
  tags: ['account'],
  summary: 'Delete the account',
  description:
    'Password-checked against the account\'s own budget (10 failures per 15 min; failures count towards the username\'s login slowdown; strangers cannot block it). ' +
    'Memberships end as if the user left (reason "deleted"), open uploads are aborted, ' +
    'threads, replies and media stay with author_id null, the username is never handed out again, and every session ends.',
  request: { body: jsonBody(DeleteAccountBody) },
  responses: { 204: { description: 'deleted' } },
});

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(meRoute, async (c) => c.json(await getMe(c.get('deps'), c.get('auth').userId), 200));

  app.openapi(passwordRoute, async (c) => {
    const { userId, sessionId } = c.get('auth');
    const body = c.req.valid('json');
    await changePassword(c.get('deps'), { userId, sessionId, currentPassword: body.current_password, newPassword: body.new_password }, witness(c));
    return c.body(null, 204);
  });

  app.openapi(deleteRoute, async (c) => {
    await deleteAccount(c.get('deps'), { userId: c.get('auth').userId, password: c.req.valid('json').password }, witness(c));
    return c.body(null, 204);
  });
}
