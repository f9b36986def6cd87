// Relay messages: send an envelope to everyone or to chosen members; list what the caller may read.
import type { OpenAPIHono } from '@hono/zod-openapi';
import { listMessages, sendMessage } from '../../domain/messages';
import type { AppEnv } from '../../http/env';
import { idempotent } from '../../http/idempotency';
import { defineRoute, jsonBody, jsonResponse } from '../../http/route';
import { idParam } from '../../http/schemas';
import { MESSAGE_BODY_CAP, MessageListQuery, MessagePage, MessageReceipt, SendMessageBody } from './schemas';

const sendRoute = defineRoute({
  method: 'post',
  path: '/api/groups/{groupId}/messages',
  operationId: 'messages.send',
  errors: ['FORBIDDEN', 'KEY_PENDING'],
  idempotent: true,
  tags: ['messages'],
  summary: 'Relay an envelope to every member or to chosen members (Idempotency-Key supported)',
  maxBody: MESSAGE_BODY_CAP,
  request: { params: idParam('groupId'), body: jsonBody(SendMessageBody) },
  responses: { 201: jsonResponse('relayed; emits message_created (per-recipient envelopes reach only their recipients)', MessageReceipt) },
});

const listRoute = defineRoute({
  method: 'get',
  path: '/api/groups/{groupId}/messages',
  operationId: 'messages.list',
  tags: ['messages'],
  summary: 'Messages after a seq: those for everyone and those addressed to the caller',
  request: { params: idParam('groupId'), query: MessageListQuery },
  responses: { 200: jsonResponse('one page', MessagePage) },
});

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(sendRoute, async (c) => {
    const deps = c.get('deps');
    const { groupId } = c.req.valid('param');
    const body = c.req.valid('json');
    const senderId = c.get('auth').userId;
    return await idempotent(c, body, {
      async write(tx, outbox) {
        const out = await sendMessage(tx, {
          groupId,
          senderId,
          message: body.recipients
            ? { keyEpoch: body.key_epoch, recipients: body.recipients.map((r) => ({ userId: r.user_id, envelope: r.envelope })) }
            : { keyEpoch: body.key_epoch, envelope: body.envelope! },
          now: deps.clock.now(),
        });
        outbox.add(out.event);
        return out.message;
      },
      // A message never changes after it is sent, so the stored first answer is the answer "as it is now".
      answer: (message) => ({ status: 201, body: { id: message.id, seq: message.seq, server_timestamp: message.server_timestamp }, resourceId: message.id }),
    }) as never;
  });

  app.openapi(listRoute, async (c) => {
    const { db } = c.get('deps');
    const { after_seq: afterSeq, limit } = c.req.valid('query');
    const items = await listMessages(db, { groupId: c.req.valid('param').groupId, viewerId: c.get('auth').userId, afterSeq, limit });
    return c.json({ items, next_after_seq: items.length ? items[items.length - 1]!.seq : afterSeq }, 200);
  });
}
