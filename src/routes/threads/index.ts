// Threads: create, list, get, mark read, delete; replies live beside them (./replies.ts).
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { createThread, deleteThread, getThread, listThreads, markRead } from '../../domain/threads';
import { write } from '../../domain/tx';
import { decodeCursor, pageOf, seqCursor } from '../../http/cursor';
import type { AppEnv } from '../../http/env';
import { idempotent } from '../../http/idempotency';
import { defineRoute, jsonBody, jsonResponse } from '../../http/route';
import { idParam, page } from '../../http/schemas';
import * as replies from './replies';
import { CreateThreadBody, ReadBody, Thread, THREAD_BODY_CAP, threadIdParam, ThreadListQuery } from './schemas';


/** Activity cursors are tagged so a cursor of the other sort order is refused, not misread. */
const activityCursor = z.tuple([z.literal('activity'), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]);

const createRoute = defineRoute({
  method: 'post',
  path: '/api/threads',
  operationId: 'threads.create',
  errors: ['NOT_FOUND', 'FORBIDDEN', 'KEY_PENDING'],
  idempotent: true,
  tags: ['threads'],
  summary: 'Start a thread (Idempotency-Key supported)',
  maxBody: THREAD_BODY_CAP,
  request: { body: jsonBody(CreateThreadBody) },
  responses: { 201: jsonResponse('created; also emitted as thread_created', Thread) },
});

const listRoute = defineRoute({
  method: 'get',
  path: '/api/groups/{groupId}/threads',
  operationId: 'threads.list',
  tags: ['threads'],
  summary: "An orbit's threads, newest first (or by latest activity)",
  request: { params: idParam('groupId'), query: ThreadListQuery },
  responses: { 200: jsonResponse('one page', page(Thread)) },
});

const getRoute = defineRoute({
  method: 'get',
  path: '/api/threads/{threadId}',
  operationId: 'threads.get',
  tags: ['threads'],
  summary: 'One thread',
  request: { params: threadIdParam },
  responses: { 200: jsonResponse('thread', Thread) },
});

const readRoute = defineRoute({
  method: 'put',
  path: '/api/threads/{threadId}/read',
  operationId: 'threads.markRead',
  errors: ['FORBIDDEN', 'KEY_PENDING'],
  tags: ['threads'],
  summary: 'Mark the thread read up to an orbit seq (moves forward only)',
  request: { params: threadIdParam, body: jsonBody(ReadBody) },
  responses: { 204: { description: 'marked' } },
});

const deleteRoute = defineRoute({
  method: 'delete',
  path: '/api/threads/{threadId}',
  operationId: 'threads.delete',
  errors: ['FORBIDDEN', 'KEY_PENDING'],
  tags: ['threads'],
  summary: 'Delete a thread with its replies and media (author or owner); earlier events are scrubbed',
  request: { params: threadIdParam },
  responses: { 204: { description: 'deleted; emits thread_deleted (with media_ids and quota when media went)' } },
});

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(createRoute, async (c) => {
    const deps = c.get('deps');
    const body = c.req.valid('json');
    const { userId } = c.get('auth');
    return await idempotent(
      c,
      body,
      {
        async write(tx, outbox) {
          const out = await createThread(tx, {
            groupId: body.group_id,
            userId,
            keyEpoch: body.key_epoch,
            encryptedTitle: body.encrypted_title,
            encryptedBody: body.encrypted_body,
            now: deps.clock.now(),
          });
          outbox.add(out.event);
          return out.thread;
        },
        answer: (thread) => ({ status: 201, body: thread, resourceId: thread.id }),
      },
      (id) => getThread(deps.db, id, userId),
    ) as never;
  });

  app.openapi(listRoute, async (c) => {
    const { db } = c.get('deps');
    const { groupId } = c.req.valid('param');
    const { limit, cursor, sort } = c.req.valid('query');
    const before = sort === 'activity' ? decodeCursor(cursor, activityCursor)?.[1] : decodeCursor(cursor, seqCursor)?.[0];
    const rows = await listThreads(db, { groupId, viewerId: c.get('auth').userId, sort, before, limit });
    return c.json(
      pageOf(rows, limit, (t) => (sort === 'activity' ? ['activity', t.last_activity_seq] : [t.seq])),
      200,
    );
  });

  app.openapi(getRoute, async (c) => {
    const { db } = c.get('deps');
    return c.json(await getThread(db, c.req.valid('param').threadId, c.get('auth').userId), 200);
  });

  app.openapi(readRoute, async (c) => {
    const deps = c.get('deps');
    await markRead(deps.db, { threadId: c.req.valid('param').threadId, userId: c.get('auth').userId, seq: c.req.valid('json').seq, now: deps.clock.now() });
    return c.body(null, 204);
  });

  app.openapi(deleteRoute, async (c) => {
    const deps = c.get('deps');
    const threadId = c.req.valid('param').threadId;
    await write(deps, async (tx, outbox) => {
      outbox.add(...(await deleteThread(tx, { threadId, userId: c.get('auth').userId, now: deps.clock.now() })));
    });
    return c.body(null, 204);
  });

  replies.register(app);
}
