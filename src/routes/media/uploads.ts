// Upload sessions: start, chunks, status, the caller's open uploads, complete, abort.
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { CHUNK_SIZE } from '../../config';
import { PartDigestError, PartSizeError } from '../../deps';
import { drainBlobDeletions } from '../../domain/blob-queue';
import { AppError } from '../../domain/errors';
import { chunkSizeOf, effectiveStatus, findMedia, mediaInfoFor, requireMediaWriter, requireUploader, type MediaRow } from '../../domain/media/access';
import {
  abortUpload,
  assertUploading,
  chunkTarget,
  completeUpload,
  listOpenUploads,
  receivedChunks,
  recordChunk,
  refuseIfClosed,
  startUpload,
  uploadStatus,
} from '../../domain/media/uploads';
import { write } from '../../domain/tx';
import { requireKey } from '../../domain/writer';
import type { AppEnv } from '../../http/env';
import { idempotent } from '../../http/idempotency';
import { bodyOnce } from '../../http/request-body';
import { defineRoute } from '../../http/route';
import { json, ok } from './openapi';
import {
  ChunkReceived,
  chunkHeaders,
  chunkParams,
  CompleteBody,
  MediaInfo,
  mediaIdParam,
  OpenUpload,
  StartUploadBody,
  UploadStarted,
  UploadStatus,
} from './schemas';

const startRoute = defineRoute({
  method: 'post',
  path: '/api/media/upload',
  operationId: 'media.startUpload',
  errors: ['NOT_FOUND', 'FORBIDDEN', 'KEY_PENDING', 'QUOTA_EXCEEDED'],
  idempotent: true,
  tags: ['media'],
  summary: "Start an upload: reserves its bytes and one file in the orbit's quota",
  description:
    'At most 5 open uploads and 2 × MAX_MEDIA_BYTES reserved per user (429). An upload expires 1 h after its last chunk and 24 h after its start. Accepts Idempotency-Key.',
  request: { body: json(StartUploadBody) },
  responses: { 201: ok('upload started', UploadStarted) },
});

const chunkRoute = defineRoute({
  method: 'put',
  path: '/api/media/upload/{mediaId}/chunks/{index}',
  operationId: 'media.putChunk',
  errors: ['FORBIDDEN', 'KEY_PENDING', 'CONFLICT', 'GONE'],
  tags: ['media'],
  summary: 'Upload one chunk (uploader): exactly chunk_size bytes, the last one the remainder',
  description: 'Any order, any concurrency; a chunk already received answers 200 and changes nothing. 409 after complete or abort, 410 after expiry.',
  maxBody: CHUNK_SIZE,
  request: {
    params: chunkParams,
    headers: chunkHeaders,
    body: {
      description: 'The raw chunk, Content-Type: application/octet-stream (anything else is 415). Wrong sizes are 400; more than chunk_size bytes is 413.',
      content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } },
      required: true,
    },
  },
  responses: {
    200: ok('chunk stored', ChunkReceived),
    410: { description: 'the upload expired' },
  },
});

const statusRoute = defineRoute({
  method: 'get',
  path: '/api/media/upload/{mediaId}',
  operationId: 'media.uploadStatus',
  errors: ['FORBIDDEN', 'GONE'],
  tags: ['media'],
  summary: "An upload's state, to resume it (uploader)",
  request: { params: mediaIdParam },
  responses: { 200: ok('upload status', UploadStatus) },
});

const listRoute = defineRoute({
  method: 'get',
  path: '/api/media/uploads',
  operationId: 'media.listUploads',
  tags: ['media'],
  summary: "The caller's open uploads, to resume or abort after losing local state",
  responses: { 200: ok('open uploads', z.object({ items: z.array(OpenUpload) })) },
});

const completeRoute = defineRoute({
  method: 'post',
  path: '/api/media/upload/complete',
  operationId: 'media.completeUpload',
  errors: ['NOT_FOUND', 'FORBIDDEN', 'KEY_PENDING', 'CONFLICT', 'UPLOAD_INCOMPLETE', 'GONE', 'QUOTA_EXCEEDED'],
  tags: ['media'],
  summary: 'Complete an upload (uploader): reservation becomes usage, emits media_uploaded',
  description: '201 the first time, 200 with the same media on a repeat; 409 UPLOAD_INCOMPLETE with details.missing.',
  request: { body: json(CompleteBody) },
  responses: {
    200: ok('already complete', MediaInfo),
    201: ok('completed', MediaInfo),
    410: { description: 'the upload expired' },
  },
});

const abortRoute = defineRoute({
  method: 'delete',
  path: '/api/media/upload/{mediaId}',
  operationId: 'media.abortUpload',
  errors: ['FORBIDDEN', 'KEY_PENDING', 'CONFLICT', 'GONE'],
  tags: ['media'],
  summary: 'Abort an upload (uploader or owner): reservation released, parts deleted',
  description: 'Aborting an aborted or expired upload is 204 too; a completed one is 409 (delete the media instead).',
  request: { params: mediaIdParam },
  responses: { 204: { description: 'aborted' } },
});

/** Reads a body to its end without keeping it. */
async function discard(body: ReadableStream<Uint8Array>): Promise<void> {
  const reader = body.getReader();
  while (!(await reader.read()).done);
}

/**
 * Reads a repeated chunk's body to its end (it is answered, never stored again) and checks it as
 * a first one would be: its size (a chunked body declares none) and its X-Chunk-SHA256.
 */
async function checkRepeat(body: ReadableStream<Uint8Array> | null, size: number, digest: string | undefined): Promise<'size' | 'digest' | null> {
  const parts: Uint8Array[] = [];
  let length = 0;
  if (body) {
    const reader = body.getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      length += read.value.byteLength;
      if (digest && length <= size) parts.push(read.value);
    }
  }
  if (length !== size) return 'size';
  if (!digest) return null;
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const part of parts) bytes.set(part, (at += part.byteLength) - part.byteLength);
  const hex = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
  return hex === digest ? null : 'digest';
}

const isOctetStream = (type: string | undefined) => type?.split(';')[0]?.trim().toLowerCase() === 'application/octet-stream';

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(startRoute, async (c) => {
    const deps = c.get('deps');
    const body = c.req.valid('json');
    const { userId } = c.get('auth');
    const view = (row: MediaRow) => ({
      media_id: row.id,
      chunk_size: deps.config.chunkSize,
      chunk_count: row.chunkCount,
      status: effectiveStatus(row, deps.clock.now()),
      upload_expires_at: row.uploadExpiresAt.toISOString(),
    });
    return await idempotent(
      c,
      body,
      {
        write: (tx) =>
          startUpload(tx, deps, {
            userId,
            groupId: body.group_id,
            threadId: body.thread_id,
            replyId: body.reply_id,
            keyEpoch: body.key_epoch,
            sizeBytes: body.size_bytes,
            encryptedMetadata: body.encrypted_metadata,
            encryptionIv: body.encryption_iv,
            now: deps.clock.now(),
          }),
        answer: (row) => ({ status: 201, body: view(row), resourceId: row.id }),
      },
      async (id) => {
        const row = await findMedia(deps.db, id);
        if (!row) throw new AppError('NOT_FOUND');
        return view(row);
      },
    ) as never;
  });

  app.openapi(chunkRoute, async (c) => {
    const store = async () => {
      const deps = c.get('deps');
      const { mediaId, index } = c.req.valid('param');
      const digest = c.req.valid('header')['x-chunk-sha256']?.toLowerCase();
      if (!isOctetStream(c.req.header('content-type'))) throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'Chunks are sent as application/octet-stream.');
      const { userId } = c.get('auth');
      const { row, stored } = await chunkTarget(deps.db, mediaId, userId, index);
      assertUploading(row, deps.clock.now());
      if (index >= row.chunkCount) {
        throw new AppError('VALIDATION_ERROR', `index must be between 0 and ${row.chunkCount - 1}.`, { field: 'index', chunk_count: row.chunkCount });
      }
      const size = chunkSizeOf(row, index, deps.config.chunkSize);
      const sizeError = () => new AppError('VALIDATION_ERROR', `Chunk ${index} must be exactly ${size} bytes.`, { field: 'body', expected_bytes: size });
      const declared = c.req.header('content-length');
      if (declared !== undefined && Number(declared) !== size) throw sizeError();

      const digestError = () => new AppError('VALIDATION_ERROR', 'The chunk does not match X-Chunk-SHA256; it was not counted.', { field: 'x-chunk-sha256', index });
      if (stored) {
        const refused = await checkRepeat(c.req.raw.body, size, digest);
        if (refused) throw refused === 'size' ? sizeError() : digestError();
        const received = (await receivedChunks(deps.db, mediaId)).length;
        return c.json({ index, received, chunk_count: row.chunkCount }, 200);
      }
      const body = bodyOnce(c);
      if (!body) throw sizeError();
      let part;
      try {
        part = await deps.blobs.putPart(row.blobKey, row.uploadHandle, index, body, size, digest);
      } catch (err) {
        if (err instanceof PartSizeError) throw sizeError();
        if (err instanceof PartDigestError) throw digestError();
        // An abort (or expiry) that removed the upload under this chunk is a 409/410, not a 500.
        await refuseIfClosed(deps, mediaId, deps.clock.now());
        throw err;
      }
      const now = deps.clock.now();
      const received = await recordChunk(deps.db, row, userId, index, part, now).catch(async (err) => {
        await refuseIfClosed(deps, mediaId, now);
        throw err;
      });
      return c.json({ index, received, chunk_count: row.chunkCount }, 200);
    };
    try {
      return await store();
    } catch (err) {
      // Read what the client is still sending (at most one chunk: the route's cap) before the
      // error goes out, so the connection stays usable instead of being reset mid-upload.
      const body = c.req.raw.body;
      if (body && !body.locked) await discard(body).catch(() => undefined);
      throw err;
    }
  });

  app.openapi(statusRoute, async (c) => {
    const deps = c.get('deps');
    const { row } = await requireUploader(deps.db, c.req.valid('param').mediaId, c.get('auth').userId);
    return c.json(await uploadStatus(deps.db, row, deps.config.chunkSize, deps.clock.now()), 200);
  });

  app.openapi(listRoute, async (c) => {
    const deps = c.get('deps');
    return c.json({ items: await listOpenUploads(deps.db, c.get('auth').userId, deps.config.chunkSize, deps.clock.now()) }, 200);
  });

  app.openapi(completeRoute, async (c) => {
    const deps = c.get('deps');
    const { userId } = c.get('auth');
    // Refused early (before the store assembles the parts); the completing transaction checks again under the gate.
    const { row, member } = await requireUploader(deps.db, c.req.valid('json').media_id, userId);
    requireKey(member);
    const done = await completeUpload(deps, row, userId, deps.clock.now());
    return c.json(await mediaInfoFor(deps.db, done.row, userId), done.status);
  });

  app.openapi(abortRoute, async (c) => {
    const deps = c.get('deps');
    const now = deps.clock.now();
    const keys = await write(deps, async (tx) => {
      const { row } = await requireMediaWriter(tx, c.req.valid('param').mediaId, c.get('auth').userId, 'uploader or owner');
      return await abortUpload(tx, row, now);
    });
    // The queue holds the parts durably; deleting them now just saves cleanup the trip.
    await drainBlobDeletions(deps.db, deps.blobs, now, { keys }).catch(() => 0);
    return c.body(null, 204);
  });
}
