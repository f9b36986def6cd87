// Orbits, members, keys, invites and quota. /api/groups/join is registered before the
// /api/groups/{groupId} routes (fixed segments first).
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../../http/env';
import { registerInvites } from './invites';
import { registerKeys } from './keys';
import { registerMembers } from './members';
import { registerOrbits } from './orbits';
import { registerQuota } from './quota';

export function register(app: OpenAPIHono<AppEnv>) {
  registerOrbits(app);
  registerMembers(app);
  registerKeys(app);
  registerInvites(app);
  registerQuota(app);
}
