// Catch-up from the orbit event log (the REST side of the live socket).
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { catchUp } from '../../domain/catch-up';
import { EVENT_TYPES } from '../../domain/events';
import type { AppEnv } from '../../http/env';
import { defineRoute, jsonResponse } from '../../http/route';
import { idParam, limitQuery, seqQuery, timestamp, uuid } from '../../http/schemas';

export const Event = z
  .object({
    type: z.enum(EVENT_TYPES),
    group_id: uuid,
    seq: z.number().int(),
    at: timestamp,
    actor_id: uuid.nullable(),
    data: z.record(z.string(), z.unknown()).openapi({ description: 'The created object, or `{id, deleted: true}` once its record was deleted.' }),
  })
  .openapi('Event');

const EventPage = z
  .object({
    items: z.array(Event),
    next_after_seq: z.number().int().openapi({ description: 'Pass as after_seq next time; fewer items than limit means caught up.' }),
    oldest_seq: z.number().int().openapi({ description: 'The oldest seq the log still keeps.' }),
  })
  .openapi('EventPage');

const listRoute = defineRoute({
  method: 'get',
  path: '/api/groups/{groupId}/events',
  operationId: 'events.list',
  errors: ['GONE'],
  tags: ['events'],
  summary: 'Events after a seq, as the caller may see them; 410 GONE (details.oldest_seq) when the log no longer reaches back that far',
  request: { params: idParam('groupId'), query: z.object({ after_seq: seqQuery('after_seq'), limit: limitQuery(50) }) },
  responses: {
    200: jsonResponse('one page', EventPage),
    410: { description: 'details.oldest_seq: the log no longer reaches back that far; reload through the list endpoints' },
  },
});

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(listRoute, async (c) => {
    const { db } = c.get('deps');
    const { after_seq: afterSeq, limit } = c.req.valid('query');
    return c.json(await catchUp(db, { groupId: c.req.valid('param').groupId, viewerId: c.get('auth').userId, afterSeq, limit }), 200);
  });
}
