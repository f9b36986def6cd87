// Completed files: attach, download (ranges, validators), info, an orbit's list, delete.
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { drainBlobDeletions } from '../../domain/blob-queue';
import { AppError } from '../../domain/errors';
import { requireMember } from '../../domain/groups';
import {
  findMedia,
  goneError,
  listGroupMedia,
  mediaInfoFor,
  recordDownload,
  requireAvailable,
  requireMediaAccess,
  requireMediaWriter,
} from '../../domain/media/access';
import { attachMedia, deleteMedia } from '../../domain/media/files';
import { write } from '../../domain/tx';
import { decodeCursor, pageOf, seqCursor } from '../../http/cursor';
import type { AppEnv } from '../../http/env';
import { headerRefs } from '../../http/openapi';
import { defineRoute } from '../../http/route';
import { page, pageQuery } from '../../http/schemas';
import { json, ok } from './openapi';
import { chooseRange, ifRangeHolds, noneMatch } from './range';
import { groupIdParam } from '../groups/schemas';
import { AttachBody, downloadHeaders, MediaInfo, mediaIdParam } from './schemas';

const attachRoute = defineRoute({
  method: 'patch',
  path: '/api/media/{mediaId}',
  operationId: 'media.attach',
  errors: ['FORBIDDEN', 'KEY_PENDING', 'CONFLICT', 'GONE'],
  tags: ['media'],
  summary: 'Attach a file to a thread or reply of its orbit (uploader)',
  request: { params: mediaIdParam, body: json(AttachBody) },
  responses: { 200: ok('attached', MediaInfo), 410: { description: 'the file expired' } },
});

const FILE_HEADERS = ['ETag', 'Last-Modified', 'Accept-Ranges', 'Content-Disposition'] as const;

const binary = { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } };

const downloadRoute = defineRoute({
  method: 'get',
  path: '/api/media/{mediaId}/download',
  operationId: 'media.download',
  errors: ['GONE', 'RANGE_NOT_SATISFIABLE'],
  tags: ['media'],
  summary: 'Download a completed file (ciphertext), whole or one byte range',
  description:
    'Streams with Content-Length, ETag, Accept-Ranges: bytes, Content-Disposition: attachment, Cache-Control: private, no-store. If-None-Match → 304; one Range → 206 with Content-Range; If-Range honoured; several ranges are served whole.',
  request: { params: mediaIdParam, headers: downloadHeaders },
  responses: {
    200: { description: 'the whole file', content: binary, headers: headerRefs(...FILE_HEADERS) },
    206: { description: 'one byte range', content: binary, headers: headerRefs(...FILE_HEADERS, 'Content-Range') },
    304: { description: 'not modified (If-None-Match)', headers: headerRefs('ETag', 'Last-Modified', 'Accept-Ranges') },
    410: { description: 'past expires_at, also after cleanup removed it' },
    416: { description: 'Content-Range: bytes */size names the size' },
  },
});

const infoRoute = defineRoute({
  method: 'get',
  path: '/api/media/{mediaId}/info',
  operationId: 'media.info',
  errors: ['GONE'],
  tags: ['media'],
  summary: "A completed file's metadata",
  request: { params: mediaIdParam },
  responses: { 200: ok('media', MediaInfo), 410: { description: 'the file expired' } },
});

const listRoute = defineRoute({
  method: 'get',
  path: '/api/groups/{groupId}/media',
  operationId: 'media.list',
  tags: ['media'],
  summary: "An orbit's unexpired files, newest first",
  request: { params: groupIdParam, query: pageQuery },
  responses: { 200: ok('files', page(MediaInfo)) },
});

const deleteRoute = defineRoute({
  method: 'delete',
  path: '/api/media/{mediaId}',
  operationId: 'media.delete',
  errors: ['FORBIDDEN', 'KEY_PENDING', 'GONE'],
  tags: ['media'],
  summary: 'Delete a file (uploader or owner): quota released at once, emits media_deleted',
  request: { params: mediaIdParam },
  responses: { 204: { description: 'deleted' } },
});

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(attachRoute, async (c) => {
    const deps = c.get('deps');
    const { mediaId } = c.req.valid('param');
    const body = c.req.valid('json');
    const { userId } = c.get('auth');
    const row = await write(deps, async (tx) => {
      await requireMediaWriter(tx, mediaId, userId, 'uploader');
      return await attachMedia(tx, mediaId, { threadId: body.thread_id, replyId: body.reply_id }, deps.clock.now());
    });
    return c.json(await mediaInfoFor(deps.db, row, userId), 200);
  });

  app.openapi(downloadRoute, async (c) => {
    const deps = c.get('deps');
    const { userId } = c.get('auth');
    const now = deps.clock.now();
    const headers = c.req.valid('header');
    const { row: found } = await requireMediaAccess(deps.db, c.req.valid('param').mediaId, userId);
    const row = requireAvailable(found, now);
    const etag = `"${row.id}"`;
    c.header('ETag', etag);
    c.header('Last-Modified', row.uploadedAt.toUTCString());
    c.header('Accept-Ranges', 'bytes');
    c.header('Cache-Control', 'private, no-store');
    c.header('X-Content-Type-Options', 'nosniff');
    if (noneMatch(headers['if-none-match'], etag)) return c.body(null, 304);

    const range = ifRangeHolds(headers['if-range'], etag, row.uploadedAt) ? chooseRange(headers.range, row.sizeBytes) : ({ kind: 'full' } as const);
    if (range.kind === 'unsatisfiable') {
      c.header('Content-Range', `bytes */${row.sizeBytes}`);
      throw new AppError('RANGE_NOT_SATISFIABLE', `The file has ${row.sizeBytes} bytes.`, { size_bytes: row.sizeBytes });
    }
    const part = range.kind === 'partial' ? { offset: range.start, length: range.end - range.start + 1 } : undefined;
    const blob = await deps.blobs.get(row.blobKey, part);
    if (!blob) {
      // Cleanup took it between our read and the store's: the file is as gone as its row says.
      const now2 = deps.clock.now();
      const again = await findMedia(deps.db, row.id);
      if (!again || (again.expiresAt && again.expiresAt <= now2)) throw goneError();
      throw new Error('a completed file has no blob');
    }
    if (c.req.method !== 'HEAD') await recordDownload(deps.db, row.id, userId, now);
    c.header('Content-Type', 'application/octet-stream');
    c.header('Content-Disposition', 'attachment');
    c.header('Content-Length', String(blob.size));
    if (range.kind === 'partial') c.header('Content-Range', `bytes ${range.start}-${range.end}/${row.sizeBytes}`);
    return c.body(blob.body, part ? 206 : 200);
  });

  app.openapi(infoRoute, async (c) => {
    const deps = c.get('deps');
    const { userId } = c.get('auth');
    const { row } = await requireMediaAccess(deps.db, c.req.valid('param').mediaId, userId);
    return c.json(await mediaInfoFor(deps.db, requireAvailable(row, deps.clock.now()), userId), 200);
  });

  app.openapi(listRoute, async (c) => {
    const deps = c.get('deps');
    const { userId } = c.get('auth');
    const { groupId } = c.req.valid('param');
    const { limit, cursor } = c.req.valid('query');
    const after = decodeCursor(cursor, seqCursor);
    await requireMember(deps.db, groupId, userId);
    const rows = await listGroupMedia(deps.db, groupId, userId, deps.clock.now(), limit, after?.[0]);
    const { items, next_cursor } = pageOf(rows, limit, (r) => [r.seq]);
    return c.json({ items: items.map(({ seq: _seq, ...info }) => info), next_cursor }, 200);
  });

  app.openapi(deleteRoute, async (c) => {
    const deps = c.get('deps');
    const { userId } = c.get('auth');
    const now = deps.clock.now();
    const key = await write(deps, async (tx, outbox) => {
      const { row } = await requireMediaWriter(tx, c.req.valid('param').mediaId, userId, 'uploader or owner');
      outbox.add(...(await deleteMedia(tx, row, userId, now)));
      return row.blobKey;
    });
    await drainBlobDeletions(deps.db, deps.blobs, now, { keys: [key] }).catch(() => 0);
    return c.body(null, 204);
  });
}
