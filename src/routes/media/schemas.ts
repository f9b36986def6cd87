import { z } from '@hono/zod-openapi';
import { ciphertext, idParam, keyEpoch, storableText, timestamp, uuid } from '../../http/schemas';

export const mediaIdParam = idParam('mediaId');

export const chunkParams = mediaIdParam.extend({
  index: z
    .string()
    .regex(/^\d{1,6}$/, 'must be a chunk index (0 … chunk_count - 1)')
    .transform(Number)
    .openapi({ type: 'integer', minimum: 0, param: { name: 'index', in: 'path', required: true }, description: '0 … chunk_count - 1' }),
});

const status = z.enum(['uploading', 'complete', 'aborted', 'expired']);

export const StartUploadBody = z
  .object({
    group_id: uuid,
    thread_id: uuid.nullable().optional(),
    reply_id: uuid.nullable().optional(),
    key_epoch: keyEpoch,
    size_bytes: z
      .number()
      .int()
      .min(1)
      .max(Number.MAX_SAFE_INTEGER)
      .openapi({ description: '1 … MAX_MEDIA_BYTES (see /api/config); more is 413 PAYLOAD_TOO_LARGE' }),
    encrypted_metadata: ciphertext(4096, 'encrypted_metadata'),
    encryption_iv: storableText(64).min(1),
  })
  .openapi('StartUploadBody');

export const UploadStarted = z
  .object({
    media_id: uuid,
    chunk_size: z.number().int(),
    chunk_count: z.number().int(),
    status,
    upload_expires_at: timestamp,
  })
  .openapi('UploadStarted');

export const ChunkReceived = z
  .object({
    index: z.number().int(),
    received: z.number().int().openapi({ description: 'How many distinct chunks the server holds now' }),
    chunk_count: z.number().int(),
  })
  .openapi('ChunkReceived');

export const UploadStatus = z
  .object({
    media_id: uuid,
    group_id: uuid,
    chunk_size: z.number().int(),
    chunk_count: z.number().int(),
    size_bytes: z.number().int(),
    received: z.array(z.number().int()),
    missing: z.array(z.number().int()),
    status,
    upload_expires_at: timestamp,
  })
  .openapi('UploadStatus');

export const OpenUpload = UploadStatus.extend({
  thread_id: uuid.nullable(),
  reply_id: uuid.nullable(),
  key_epoch: z.number().int(),
  encrypted_metadata: z.string(),
  encryption_iv: z.string(),
  created_at: timestamp,
}).openapi('OpenUpload');

export const CompleteBody = z.object({ media_id: uuid }).openapi('CompleteUploadBody');

export const AttachBody = z
  .object({
    thread_id: uuid.nullable().optional(),
    reply_id: uuid.nullable().optional(),
  })
  .openapi('AttachMediaBody', { description: 'A reply alone attaches to its thread too; null detaches.' });

export const MediaInfo = z
  .object({
    id: uuid,
    group_id: uuid,
    thread_id: uuid.nullable(),
    reply_id: uuid.nullable(),
    author_id: uuid.nullable(),
    key_epoch: z.number().int(),
    encrypted_metadata: z.string(),
    encryption_iv: z.string(),
    size_bytes: z.number().int(),
    uploaded_at: timestamp.nullable().openapi({ description: 'null while still an upload (PATCH during upload)' }),
    expires_at: timestamp.nullable(),
    downloaded_by_me: z.boolean(),
  })
  .openapi('MediaInfo');

export const chunkHeaders = z.object({
  'x-chunk-sha256': z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
    .optional()
    .openapi({ description: "Hex SHA-256 of the chunk's bytes: on mismatch 400 and the chunk is not counted" }),
});

export const downloadHeaders = z.object({
  range: z.string().optional().openapi({ description: 'One range, bytes=a-b | a- | -n (206); more than one range is served whole' }),
  'if-range': z.string().optional(),
  'if-none-match': z.string().optional(),
});
