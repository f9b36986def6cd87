// /api/users/...: the caller's account, sessions and keys; co-members' public keys.
// Paths under /api/users/me are registered before /api/users/{userId}.
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../../http/env';
import * as keys from './keys';
import * as me from './me';
import * as sessions from './sessions';

export function register(app: OpenAPIHono<AppEnv>) {
  me.register(app);
  sessions.register(app);
  keys.register(app);
}
