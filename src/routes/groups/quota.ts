// The orbit's storage quota, for every member.
import type { OpenAPIHono } from '@hono/zod-openapi';
import { noSuchOrbit } from '../../domain/errors';
import { requireMember } from '../../domain/groups';
import { getQuota, quotaView } from '../../domain/quota';
import type { AppEnv } from '../../http/env';
import { defineRoute } from '../../http/route';
import { jsonResponse } from './common';
import { groupIdParam, Quota } from './schemas';

const quotaRoute = defineRoute({
  method: 'get',
  path: '/api/groups/{groupId}/quota',
  operationId: 'orbits.quota',
  tags: ['orbits'],
  summary: "The orbit's storage use: completed media (used) and open uploads (reserved)",
  request: { params: groupIdParam },
  responses: { 200: jsonResponse('quota', Quota) },
});

export function registerQuota(app: OpenAPIHono<AppEnv>) {
  app.openapi(quotaRoute, async (c) => {
    const { db } = c.get('deps');
    const { groupId } = c.req.valid('param');
    await requireMember(db, groupId, c.get('auth').userId);
    const quota = await getQuota(db, groupId);
    // Every orbit gets its quota row when created; none means the orbit just went away.
    if (!quota) throw noSuchOrbit();
    return c.json(quotaView(quota), 200);
  });
}
