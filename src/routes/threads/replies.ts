// Replies of a thread: create, list (oldest first or newest first), delete to a tombstone.
import type { OpenAPIHono } from '@hono/zod-openapi';
import { createReply, deleteReply, getReply, listReplies } from '../../domain/replies';
import { write } from '../../domain/tx';
import { decodeCursor, pageOf, seqCursor } from '../../http/cursor';
import type { AppEnv } from '../../http/env';
import { idempotent } from '../../http/idempotency';
import { defineRoute, jsonBody, jsonResponse } from '../../http/route';
import { page } from '../../http/schemas';
import { CreateReplyBody, Reply, REPLY_BODY_CAP, replyIdParam, ReplyListQuery, threadIdParam } from './schemas';

const createRoute = defineRoute({
  method: 'post',
  path: '/api/threads/{threadId}/replies',
  operationId: 'replies.create',
  errors: ['FORBIDDEN', 'KEY_PENDING'],
  idempotent: true,
  tags: ['replies'],
  summary: 'Reply to a thread or to one of its replies (Idempotency-Key supported)',
  maxBody: REPLY_BODY_CAP,
  request: { params: threadIdParam, body: jsonBody(CreateReplyBody) },
  responses: { 201: jsonResponse('created; also emitted as reply_created', Reply) },
});

const listRoute = defineRoute({
  method: 'get',
  path: '/api/threads/{threadId}/replies',
  operationId: 'replies.list',
  tags: ['replies'],
  summary: "A thread's replies, oldest first (?order=desc for newest first); deleted ones as tombstones",
  request: { params: threadIdParam, query: ReplyListQuery },
  responses: { 200: jsonResponse('one page', page(Reply)) },
});

const deleteRoute = defineRoute({
  method: 'delete',
  path: '/api/replies/{replyId}',
  operationId: 'replies.delete',
  errors: ['FORBIDDEN', 'KEY_PENDING'],
  tags: ['replies'],
  summary: 'Delete a reply (author or owner): it stays as a tombstone without body; its media go',
  request: { params: replyIdParam },
  responses: { 204: { description: 'deleted; emits reply_deleted' } },
});

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(createRoute, async (c) => {
    const deps = c.get('deps');
    const { threadId } = c.req.valid('param');
    const body = c.req.valid('json');
    const { userId } = c.get('auth');
    return await idempotent(
      c,
      body,
      {
        async write(tx, outbox) {
          const out = await createReply(tx, {
            threadId,
            userId,
            keyEpoch: body.key_epoch,
            encryptedBody: body.encrypted_body,
            parentReplyId: body.parent_reply_id ?? undefined,
            now: deps.clock.now(),
          });
          outbox.add(out.event);
          return out.reply;
        },
        answer: (reply) => ({ status: 201, body: reply, resourceId: reply.id }),
      },
      (id) => getReply(deps.db, id, userId),
    ) as never;
  });

  app.openapi(listRoute, async (c) => {
    const { db } = c.get('deps');
    const { limit, cursor, order } = c.req.valid('query');
    const rows = await listReplies(db, {
      threadId: c.req.valid('param').threadId,
      viewerId: c.get('auth').userId,
      order,
      cursor: decodeCursor(cursor, seqCursor)?.[0],
      limit,
    });
    return c.json(pageOf(rows, limit, (r) => [r.seq]), 200);
  });

  app.openapi(deleteRoute, async (c) => {
    const deps = c.get('deps');
    const replyId = c.req.valid('param').replyId;
    await write(deps, async (tx, outbox) => {
      outbox.add(...(await deleteReply(tx, { replyId, userId: c.get('auth').userId, now: deps.clock.now() })));
    });
    return c.body(null, 204);
  });
}
