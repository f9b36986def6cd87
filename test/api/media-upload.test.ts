// Chunked uploads: start, chunks in any order, sizes, digests, resume, complete, abort, expiry.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, createInvite, createOrbit, expectError, expectStatus, json, registerUser, type TestOrbit, type TestUser } from '../support/api';
import {
  CHUNK,
  chunkOf,
  complete,
  putChunk,
  quotaFromRows,
  quotaOf,
  randomFile,
  sha256Hex,
  startUpload,
  startUploadRaw,
  THREE_CHUNKS,
  uploadFile,
} from '../support/media';
import type { Target } from '../support/types';

let t: Target;
// Each test gets its own owner and orbit: one user may hold only 5 open uploads.
let owner: TestUser;
let orbit: TestOrbit;
beforeAll(async () => {
  t = await createTarget({ env: { LOG_LEVEL: 'silent' } });
});
beforeEach(async () => {
  owner = await registerUser(t);
  orbit = await createOrbit(t, owner);
});
afterAll(() => t?.close());

const status = async (user: TestUser, mediaId: string) => json(await t.fetch(`/api/media/upload/${mediaId}`, { headers: user.auth }));

describe('a chunked upload', () => {
  it('takes chunks out of order and repeated, resumes from its status, completes once and downloads intact', async () => {
    const file = randomFile(THREE_CHUNKS);
    const started = await startUpload(t, owner, orbit.id, THREE_CHUNKS);
    expect(started).toMatchObject({ chunk_size: CHUNK, chunk_count: 3, status: 'uploading' });
    expect(Date.parse(started.upload_expires_at)).toBeGreaterThan(Date.now());
    expect(await quotaOf(t, orbit.id)).toMatchObject({ bytes_reserved: THREE_CHUNKS, files_reserved: 1 });

    const last = await putChunk(t, owner, started.media_id, 2, chunkOf(file, 2));
    expect(await json(await expectStatus(last, 200))).toEqual({ index: 2, received: 1, chunk_count: 3 });
    await expectStatus(await putChunk(t, owner, started.media_id, 0, chunkOf(file, 0)), 200);
    const repeat = await putChunk(t, owner, started.media_id, 0, chunkOf(file, 0));
    expect(await json(await expectStatus(repeat, 200))).toEqual({ index: 0, received: 2, chunk_count: 3 });

    expect(await status(owner, started.media_id)).toMatchObject({ media_id: started.media_id, chunk_count: 3, received: [0, 2], missing: [1], status: 'uploading' });
    const open = await json(await t.fetch('/api/media/uploads', { headers: owner.auth }));
    expect(open.items.map((u: { media_id: string }) => u.media_id)).toContain(started.media_id);

    await expectStatus(await putChunk(t, owner, started.media_id, 1, chunkOf(file, 1), { 'x-chunk-sha256': await sha256Hex(chunkOf(file, 1)) }), 200);
    const done = await complete(t, owner, started.media_id);
    const info = await json(await expectStatus(done, 201));
    expect(info).toMatchObject({ id: started.media_id, group_id: orbit.id, author_id: owner.id, size_bytes: THREE_CHUNKS, downloaded_by_me: false });
    const retention = Date.parse(info.expires_at) - Date.parse(info.uploaded_at);
    expect(retention).toBe(7 * 86_400_000);

    const again = await complete(t, owner, started.media_id);
    expect(await json(await expectStatus(again, 200))).toEqual(info);
    expect(await quotaOf(t, orbit.id)).toEqual(await quotaFromRows(t, orbit.id));

    const download = await t.fetch(`/api/media/${started.media_id}/download`, { headers: owner.auth });
    const bytes = new Uint8Array(await (await expectStatus(download, 200)).arrayBuffer());
    expect(bytes.length).toBe(THREE_CHUNKS);
    expect(await sha256Hex(bytes)).toBe(await sha256Hex(file));

    const events = await t.sql<{ type: string; data: any }>(`select type, data from orbit_events where group_id = $1 and subject_id = $2`, [orbit.id, started.media_id]);
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe('media_uploaded');
    expect(events[0]!.data).toMatchObject({ id: started.media_id, size_bytes: THREE_CHUNKS, quota: { bytes_used: expect.any(Number), files_used: expect.any(Number) } });
    expect(events[0]!.data.quota).toEqual(expect.objectContaining(await quotaOf(t, orbit.id)));
    const open2 = await json(await t.fetch('/api/media/uploads', { headers: owner.auth }));
    expect(open2.items.map((u: { media_id: string }) => u.media_id)).not.toContain(started.media_id);
  });

  it('refuses wrong sizes, bad indexes, other content types and oversized bodies', async () => {
    const file = randomFile(THREE_CHUNKS);
    const { media_id } = await startUpload(t, owner, orbit.id, THREE_CHUNKS);
    const middleShort = await putChunk(t, owner, media_id, 1, chunkOf(file, 1).subarray(0, CHUNK - 1));
    expect((await expectError(middleShort, 400, 'VALIDATION_ERROR')).details).toMatchObject({ expected_bytes: CHUNK });
    await expectError(await putChunk(t, owner, media_id, 2, chunkOf(file, 1).subarray(0, 1235)), 400, 'VALIDATION_ERROR');
    await expectError(await putChunk(t, owner, media_id, 3, chunkOf(file, 2)), 400, 'VALIDATION_ERROR');
    await expectError(await putChunk(t, owner, media_id, -1, chunkOf(file, 2)), 400, 'VALIDATION_ERROR');
    await expectError(await putChunk(t, owner, media_id, 2, chunkOf(file, 2), { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    // Refused before it is read: the server may close the connection, so do not reuse it.
    await expectError(await putChunk(t, owner, media_id, 0, randomFile(CHUNK + 1), { connection: 'close' }), 413, 'PAYLOAD_TOO_LARGE');
    expect(await status(owner, media_id)).toMatchObject({ received: [], missing: [0, 1, 2] });
  });

  it('a body shorter than its Content-Length promise is not counted either', async () => {
    const { media_id } = await startUpload(t, owner, orbit.id, 1000);
    // A stream without Content-Length that ends early: the store sees the short count.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(randomFile(999));
        controller.close();
      },
    });
    const res = await t.fetch(`/api/media/upload/${media_id}/chunks/0`, {
      method: 'PUT',
      headers: { ...owner.auth, 'content-type': 'application/octet-stream' },
      body,
      duplex: 'half',
    } as RequestInit);
    await expectError(res, 400, 'VALIDATION_ERROR');
    expect(await status(owner, media_id)).toMatchObject({ received: [] });
  });

  it('a chunk whose X-Chunk-SHA256 does not match is 400 and not counted; the right bytes then count', async () => {
    const file = randomFile(2000);
    const { media_id } = await startUpload(t, owner, orbit.id, 2000);
    const wrong = await putChunk(t, owner, media_id, 0, file, { 'x-chunk-sha256': await sha256Hex(randomFile(10)) });
    await expectError(wrong, 400, 'VALIDATION_ERROR');
    expect(await status(owner, media_id)).toMatchObject({ received: [], missing: [0] });
    await expectError(await complete(t, owner, media_id), 409, 'UPLOAD_INCOMPLETE');
    await expectError(await putChunk(t, owner, media_id, 0, file, { 'x-chunk-sha256': 'not-hex' }), 400, 'VALIDATION_ERROR');
    await expectStatus(await putChunk(t, owner, media_id, 0, file, { 'x-chunk-sha256': (await sha256Hex(file)).toUpperCase() }), 200);
    await expectStatus(await complete(t, owner, media_id), 201);
    const bytes = new Uint8Array(await (await t.fetch(`/api/media/${media_id}/download`, { headers: owner.auth })).arrayBuffer());
    expect(await sha256Hex(bytes)).toBe(await sha256Hex(file));
  });

  it('complete with a gap is 409 UPLOAD_INCOMPLETE listing the missing chunks, and reserves nothing new', async () => {
    const file = randomFile(THREE_CHUNKS);
    const { media_id } = await startUpload(t, owner, orbit.id, THREE_CHUNKS);
    await expectStatus(await putChunk(t, owner, media_id, 0, chunkOf(file, 0)), 200);
    await expectStatus(await putChunk(t, owner, media_id, 2, chunkOf(file, 2)), 200);
    const err = await expectError(await complete(t, owner, media_id), 409, 'UPLOAD_INCOMPLETE');
    expect(err.details).toMatchObject({ missing: [1] });
    expect(await status(owner, media_id)).toMatchObject({ status: 'uploading', missing: [1] });
    expect(await quotaOf(t, orbit.id)).toEqual(await quotaFromRows(t, orbit.id));
  });

  it('after complete a chunk is 409; after abort 409; after expiry 410', async () => {
    const done = await uploadFile(t, owner, orbit.id, 100);
    await expectError(await putChunk(t, owner, done.mediaId, 0, done.file), 409, 'CONFLICT');

    const aborted = await startUpload(t, owner, orbit.id, 100);
    await expectStatus(await t.fetch(`/api/media/upload/${aborted.media_id}`, { method: 'DELETE', headers: owner.auth }), 204);
    await expectError(await putChunk(t, owner, aborted.media_id, 0, randomFile(100)), 409, 'CONFLICT');
    await expectError(await complete(t, owner, aborted.media_id), 409, 'CONFLICT');
    expect(await status(owner, aborted.media_id)).toMatchObject({ status: 'aborted' });

    const stale = await startUpload(t, owner, orbit.id, 100);
    await t.sql(`update media set upload_expires_at = now() - interval '1 second' where id = $1`, [stale.media_id]);
    await expectError(await putChunk(t, owner, stale.media_id, 0, randomFile(100)), 410, 'GONE');
    await expectError(await complete(t, owner, stale.media_id), 410, 'GONE');
    expect(await status(owner, stale.media_id)).toMatchObject({ status: 'expired' });
  });

  it('a chunk keeps the session alive for another hour, never past 24 h from its start', async () => {
    const { media_id } = await startUpload(t, owner, orbit.id, 100);
    await t.sql(`update media set created_at = now() - interval '23 hours 30 minutes', upload_expires_at = now() + interval '1 minute' where id = $1`, [media_id]);
    await expectStatus(await putChunk(t, owner, media_id, 0, randomFile(100)), 200);
    const [row] = await t.sql<{ left: number }>(`select extract(epoch from upload_expires_at - now())::int as left from media where id = $1`, [media_id]);
    expect(Number(row!.left)).toBeGreaterThan(25 * 60);
    expect(Number(row!.left)).toBeLessThanOrEqual(30 * 60);
  });
});

describe('aborting', () => {
  it('releases the reservation at once and deletes the parts; a repeat is 204; a completed file is 409', async () => {
    const before = await quotaOf(t, orbit.id);
    const file = randomFile(CHUNK + 10);
    const { media_id } = await startUpload(t, owner, orbit.id, file.length);
    await expectStatus(await putChunk(t, owner, media_id, 0, chunkOf(file, 0)), 200);
    expect((await quotaOf(t, orbit.id)).bytes_reserved).toBe(before.bytes_reserved + file.length);
    await expectStatus(await t.fetch(`/api/media/upload/${media_id}`, { method: 'DELETE', headers: owner.auth }), 204);
    expect(await quotaOf(t, orbit.id)).toEqual(before);
    expect(await t.blobKeys(`media/${orbit.id}/${media_id}`)).toEqual([]);
    const queued = await t.sql(`select 1 from blob_deletions where blob_key = $1`, [`media/${orbit.id}/${media_id}`]);
    expect(queued).toEqual([]);
    await expectStatus(await t.fetch(`/api/media/upload/${media_id}`, { method: 'DELETE', headers: owner.auth }), 204);
    expect(await quotaOf(t, orbit.id)).toEqual(before);

    const done = await uploadFile(t, owner, orbit.id, 10);
    await expectError(await t.fetch(`/api/media/upload/${done.mediaId}`, { method: 'DELETE', headers: owner.auth }), 409, 'CONFLICT');
  });
});

describe('who may do what', () => {
  it('non-members get 404 everywhere, other members 403 on the upload, the owner may abort it', async () => {
    const member = await addMember(t, owner, orbit);
    const stranger = await registerUser(t);
    const { media_id } = await startUpload(t, member, orbit.id, 100);
    const chunk = randomFile(100);

    await expectError(await startUploadRaw(t, stranger, orbit.id, 100), 404, 'NOT_FOUND');
    await expectError(await putChunk(t, stranger, media_id, 0, chunk), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/media/upload/${media_id}`, { headers: stranger.auth }), 404, 'NOT_FOUND');
    await expectError(await complete(t, stranger, media_id), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/media/upload/${media_id}`, { method: 'DELETE', headers: stranger.auth }), 404, 'NOT_FOUND');

    await expectError(await putChunk(t, owner, media_id, 0, chunk), 403, 'FORBIDDEN');
    await expectError(await t.fetch(`/api/media/upload/${media_id}`, { headers: owner.auth }), 403, 'FORBIDDEN');
    await expectStatus(await putChunk(t, member, media_id, 0, chunk), 200);
    await expectError(await complete(t, owner, media_id), 403, 'FORBIDDEN');
    const done = await complete(t, member, media_id);
    await expectStatus(done, 201);

    await expectError(await t.fetch(`/api/media/${media_id}/download`, { headers: stranger.auth }), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/media/${media_id}/info`, { headers: stranger.auth }), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/groups/${orbit.id}/media`, { headers: stranger.auth }), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/media/${media_id}`, { method: 'DELETE', headers: stranger.auth }), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/media/${crypto.randomUUID()}/download`, { headers: member.auth }), 404, 'NOT_FOUND');

    const other = await startUpload(t, member, orbit.id, 100);
    const third = await addMember(t, owner, orbit);
    await expectError(await t.fetch(`/api/media/upload/${other.media_id}`, { method: 'DELETE', headers: third.auth }), 403, 'FORBIDDEN');
    await expectStatus(await t.fetch(`/api/media/upload/${other.media_id}`, { method: 'DELETE', headers: owner.auth }), 204);
  });

  it('a pending member cannot start an upload (403 KEY_PENDING)', async () => {
    const pending = await registerUser(t);
    const res = await t.fetch('/api/groups/join', {
      method: 'POST',
      headers: { ...pending.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ invite_code: await createInvite(t, owner, orbit.id) }),
    });
    await expectStatus(res, 200);
    await expectError(await startUploadRaw(t, pending, orbit.id, 100), 403, 'KEY_PENDING');
  });
});

describe('starting an upload', () => {
  it('validates size, epoch, metadata and where the file attaches', async () => {
    await expectError(await startUploadRaw(t, owner, orbit.id, 0), 400, 'VALIDATION_ERROR');
    await expectError(await startUploadRaw(t, owner, orbit.id, 1.5), 400, 'VALIDATION_ERROR');
    const tooBig = await expectError(await startUploadRaw(t, owner, orbit.id, Number(t.env.MAX_MEDIA_BYTES ?? 524_288_000) + 1), 413, 'PAYLOAD_TOO_LARGE');
    expect(tooBig.details).toMatchObject({ limit: 524_288_000 });
    await expectError(await startUploadRaw(t, owner, orbit.id, 10, { key_epoch: 2 }), 400, 'VALIDATION_ERROR');
    await expectError(await startUploadRaw(t, owner, orbit.id, 10, { encrypted_metadata: 'not base64!' }), 400, 'VALIDATION_ERROR');
    await expectError(await startUploadRaw(t, owner, orbit.id, 10, { encrypted_metadata: Buffer.alloc(4097).toString('base64') }), 413, 'PAYLOAD_TOO_LARGE');
    await expectError(await startUploadRaw(t, owner, orbit.id, 10, { encryption_iv: 'x'.repeat(65) }), 400, 'VALIDATION_ERROR');
    await expectError(await startUploadRaw(t, owner, orbit.id, 10, { thread_id: crypto.randomUUID() }), 400, 'VALIDATION_ERROR');
    await expectError(await startUploadRaw(t, owner, orbit.id, 10, { reply_id: crypto.randomUUID() }), 400, 'VALIDATION_ERROR');
  });

  it('413 QUOTA_EXCEEDED with the quota in details when bytes or files do not fit', async () => {
    const o = await createOrbit(t, owner);
    await t.sql(`update group_quotas set bytes_limit = 1000 where group_id = $1`, [o.id]);
    const err = await expectError(await startUploadRaw(t, owner, o.id, 1001), 413, 'QUOTA_EXCEEDED');
    expect(err.details).toMatchObject({ quota: { bytes_used: 0, bytes_reserved: 0, bytes_limit: 1000, files_used: 0, files_reserved: 0, files_limit: 100 } });
    await startUpload(t, owner, o.id, 600);
    await expectError(await startUploadRaw(t, owner, o.id, 401), 413, 'QUOTA_EXCEEDED');
    await startUpload(t, owner, o.id, 400);
    await t.sql(`update group_quotas set bytes_limit = 10000, files_limit = 2 where group_id = $1`, [o.id]);
    const files = await expectError(await startUploadRaw(t, owner, o.id, 1), 413, 'QUOTA_EXCEEDED');
    expect(files.details).toMatchObject({ quota: { files_reserved: 2, files_limit: 2 } });
  });

  it('an Idempotency-Key retry returns the same upload and reserves nothing more', async () => {
    const o = await createOrbit(t, owner);
    const key = crypto.randomUUID();
    const first = await startUploadRaw(t, owner, o.id, 500, { encrypted_metadata: 'AAAA', encryption_iv: 'iv' }, { 'idempotency-key': key });
    const second = await startUploadRaw(t, owner, o.id, 500, { encrypted_metadata: 'AAAA', encryption_iv: 'iv' }, { 'idempotency-key': key });
    expect(second.status).toBe(201);
    expect((await json(second)).media_id).toBe((await json(first)).media_id);
    expect(await quotaOf(t, o.id)).toMatchObject({ bytes_reserved: 500, files_reserved: 1 });
  });

  it('one member holds at most 5 open uploads (429 with Retry-After); finishing one makes room', async () => {
    const o = await createOrbit(t, owner);
    const user = await addMember(t, owner, o);
    const open = [];
    for (let i = 0; i < 5; i++) open.push(await startUpload(t, user, o.id, 10));
    const res = await startUploadRaw(t, user, o.id, 10);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await expectError(res, 429, 'RATE_LIMITED')).details).toMatchObject({ open_uploads: 5, max_open_uploads: 5 });
    await expectStatus(await t.fetch(`/api/media/upload/${open[0]!.media_id}`, { method: 'DELETE', headers: user.auth }), 204);
    await startUpload(t, user, o.id, 10);
    // A session past its deadline no longer counts, even before cleanup runs.
    await t.sql(`update media set upload_expires_at = now() - interval '1 second' where id = $1`, [open[1]!.media_id]);
    await startUpload(t, user, o.id, 10);
    expect(await quotaOf(t, o.id)).toEqual(await quotaFromRows(t, o.id));
  });

  it('50 concurrent starts into a quota with room for exactly one: one 201, the rest 413', async () => {
    const o = await createOrbit(t, owner);
    const uploaders = [owner];
    for (let i = 0; i < 9; i++) uploaders.push(await addMember(t, owner, o));
    await t.sql(`update group_quotas set bytes_limit = 1500 where group_id = $1`, [o.id]);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => startUploadRaw(t, uploaders[i % uploaders.length]!, o.id, 1000)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 413)).toHaveLength(49);
    for (const r of results.filter((r) => r.status === 413)) expect((await json(r)).error.code).toBe('QUOTA_EXCEEDED');
    expect(await quotaOf(t, o.id)).toMatchObject({ bytes_reserved: 1000, files_reserved: 1 });
    expect(await quotaFromRows(t, o.id)).toMatchObject({ bytes_reserved: 1000, files_reserved: 1 });
  });
});

describe('reserved bytes per member', () => {
  let small: Target;
  beforeAll(async () => {
    small = await createTarget({ env: { MAX_MEDIA_BYTES: String(3 * 1024 * 1024) } });
  });
  afterAll(() => small?.close());

  it('at most 2 × MAX_MEDIA_BYTES reserved by one member (429)', async () => {
    const user = await registerUser(small);
    const o = await createOrbit(small, user);
    const max = 3 * 1024 * 1024;
    await startUpload(small, user, o.id, max);
    await startUpload(small, user, o.id, max - 10);
    const res = await startUploadRaw(small, user, o.id, 11);
    expect((await expectError(res, 429, 'RATE_LIMITED')).details).toMatchObject({ reserved_bytes: 2 * max - 10, max_reserved_bytes: 2 * max });
    await startUpload(small, user, o.id, 10);
    const config = await json(await small.fetch('/api/config'));
    expect(config.max_media_bytes).toBe(max);
  });
});
