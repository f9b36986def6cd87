import { z } from '@hono/zod-openapi';
import { base64Size, ciphertext, cursorQuery, idParam, JSON_OVERHEAD, keyEpoch, limitQuery, timestamp, uuid } from '../../http/schemas';

export const TITLE_MAX = 4 * 1024;
export const BODY_MAX = 64 * 1024;

export const THREAD_BODY_CAP = base64Size(TITLE_MAX) + base64Size(BODY_MAX) + JSON_OVERHEAD;
export const REPLY_BODY_CAP = base64Size(BODY_MAX) + JSON_OVERHEAD;

const seq = z.number().int();
export const threadIdParam = idParam('threadId');
export const replyIdParam = idParam('replyId');

export const Thread = z
  .object({
    id: uuid,
    group_id: uuid,
    author_id: uuid.nullable().openapi({ description: "Null after the author's account is deleted." }),
    author_username: z.string().nullable(),
    key_epoch: z.number().int(),
    encrypted_title: z.string(),
    encrypted_body: z.string(),
    reply_count: z.number().int().openapi({ description: 'Replies that are not deleted.' }),
    media_count: z.number().int(),
    last_activity_at: timestamp,
    last_activity_seq: seq.openapi({ description: 'Orbit seq of the thread or of its latest reply.' }),
    last_read_seq: seq.openapi({ description: "The caller's read marker (0 when never set)." }),
    unread_count: z
      .number()
      .int()
      .openapi({ description: "The caller's unread replies: not deleted, not their own, seq above last_read_seq." }),
    created_at: timestamp,
    seq,
  })
  .openapi('Thread');

export const Reply = z
  .object({
    id: uuid,
    thread_id: uuid,
    group_id: uuid,
    author_id: uuid.nullable(),
    author_username: z.string().nullable(),
    key_epoch: z.number().int(),
    parent_reply_id: uuid.nullable(),
    encrypted_body: z.string().nullable().openapi({ description: 'Null once the reply is deleted.' }),
    deleted: z.boolean(),
    created_at: timestamp,
    seq,
  })
  .openapi('Reply');

export const CreateThreadBody = z
  .object({
    group_id: uuid,
    key_epoch: keyEpoch,
    encrypted_title: ciphertext(TITLE_MAX, 'encrypted_title'),
    encrypted_body: ciphertext(BODY_MAX, 'encrypted_body'),
  })
  .openapi('CreateThreadBody');

export const CreateReplyBody = z
  .object({
    key_epoch: keyEpoch,
    encrypted_body: ciphertext(BODY_MAX, 'encrypted_body'),
    parent_reply_id: uuid.nullish().openapi({ description: 'A reply of the same thread; any other id is 400.' }),
  })
  .openapi('CreateReplyBody');

export const ReadBody = z
  .object({
    seq: z
      .number()
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .openapi({ description: 'The orbit seq read up to. The marker never moves back nor past the orbit’s last seq.' }),
  })
  .openapi('ReadMarkerBody');

export const ThreadListQuery = z.object({
  limit: limitQuery(20),
  cursor: cursorQuery,
  sort: z
    .enum(['created', 'activity'])
    .default('created')
    .openapi({ param: { name: 'sort', in: 'query' }, description: '`created` (newest first, keyset-stable) or `activity` (latest reply first, best effort while others write).' }),
});

export const ReplyListQuery = z.object({
  limit: limitQuery(50),
  cursor: cursorQuery,
  order: z.enum(['asc', 'desc']).default('asc').openapi({ param: { name: 'order', in: 'query' }, description: '`asc` oldest first, `desc` newest first.' }),
});
