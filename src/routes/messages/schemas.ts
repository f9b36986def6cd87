import { z } from '@hono/zod-openapi';
import { base64DecodedLength, isBase64 } from '../../domain/bytes';
import { base64Size, ciphertext, JSON_OVERHEAD, keyEpoch, limitQuery, seqQuery, timestamp, TOO_LARGE, uuid } from '../../http/schemas';

export const ENVELOPE_MAX = 256 * 1024;
export const RECIPIENTS_MAX = 100;
export const RECIPIENT_BYTES_MAX = 1024 * 1024;
/** The largest body the route can accept: 1 MiB of envelopes plus, per recipient, its id, keys and base64 padding. */
export const MESSAGE_BODY_CAP = base64Size(RECIPIENT_BYTES_MAX) + RECIPIENTS_MAX * 128 + JSON_OVERHEAD;

export const SendMessageBody = z
  .object({
    key_epoch: keyEpoch.optional().openapi({ description: 'The orbit key epoch the envelope is sealed with, if any.' }),
    envelope: ciphertext(ENVELOPE_MAX, 'envelope').optional().openapi({ description: 'One envelope for every member.' }),
    recipients: z
      .array(z.object({ user_id: uuid, envelope: ciphertext(ENVELOPE_MAX, 'envelope') }))
      .min(1)
      .max(RECIPIENTS_MAX)
      .optional()
      .openapi({ description: `Or one envelope per chosen member (at most ${RECIPIENTS_MAX}, ${RECIPIENT_BYTES_MAX} decoded bytes in all).` }),
  })
  .superRefine((body, ctx) => {
    if ((body.envelope === undefined) === (body.recipients === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'send either envelope or recipients', path: ['envelope'] });
      return;
    }
    if (!body.recipients) return;
    const ids = new Set(body.recipients.map((r) => r.user_id));
    if (ids.size !== body.recipients.length) ctx.addIssue({ code: 'custom', message: 'each recipient at most once', path: ['recipients'] });
    const total = body.recipients.reduce((n, r) => n + (isBase64(r.envelope) ? base64DecodedLength(r.envelope) : 0), 0);
    if (total > RECIPIENT_BYTES_MAX) {
      ctx.addIssue({
        code: 'custom',
        message: `recipients' envelopes are larger than ${RECIPIENT_BYTES_MAX} bytes in all`,
        path: ['recipients'],
        params: { reason: TOO_LARGE, limit: RECIPIENT_BYTES_MAX },
      });
    }
  })
  .openapi('SendMessageBody');

export const MessageReceipt = z.object({ id: uuid, seq: z.number().int(), server_timestamp: timestamp }).openapi('MessageReceipt');

export const Message = z
  .object({
    id: uuid,
    sender_id: uuid.nullable(),
    key_epoch: z.number().int().nullable(),
    envelope: z.string().openapi({ description: 'The envelope for everyone, or the one addressed to the caller.' }),
    seq: z.number().int(),
    server_timestamp: timestamp,
  })
  .openapi('Message');

export const MessageListQuery = z.object({ after_seq: seqQuery('after_seq'), limit: limitQuery(50) });

export const MessagePage = z
  .object({
    items: z.array(Message),
    next_after_seq: z.number().int().openapi({ description: 'Pass as after_seq next time; fewer items than limit means caught up.' }),
  })
  .openapi('MessagePage');
