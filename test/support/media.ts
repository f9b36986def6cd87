// Helpers for media tests: files of random bytes, upload starts, chunks, whole uploads.
import { b64, expectStatus, json, post, type TestUser } from './api';
import type { Target } from './types';

export const CHUNK = 5 * 1024 * 1024;
/** Two full chunks and a short last one. */
export const THREE_CHUNKS = 2 * CHUNK + 1234;

export function randomFile(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  // getRandomValues fills at most 64 KiB at a time.
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65536)));
  return bytes;
}

export function chunkOf(file: Uint8Array, index: number): Uint8Array {
  return file.subarray(index * CHUNK, Math.min(file.length, (index + 1) * CHUNK));
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function startBody(groupId: string, sizeBytes: number, extra: Record<string, unknown> = {}) {
  return { group_id: groupId, key_epoch: 1, size_bytes: sizeBytes, encrypted_metadata: b64(64), encryption_iv: b64(8), ...extra };
}

export function startUploadRaw(t: Target, user: TestUser, groupId: string, sizeBytes: number, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return t.fetch('/api/media/upload', post(startBody(groupId, sizeBytes, extra), { ...user.auth, ...headers }));
}

export async function startUpload(t: Target, user: TestUser, groupId: string, sizeBytes: number, extra: Record<string, unknown> = {}) {
  const res = await startUploadRaw(t, user, groupId, sizeBytes, extra);
  await expectStatus(res, 201);
  return json<{ media_id: string; chunk_size: number; chunk_count: number; status: string; upload_expires_at: string }>(res);
}

export function putChunk(t: Target, user: TestUser, mediaId: string, index: number, bytes: Uint8Array, headers: Record<string, string> = {}) {
  return t.fetch(`/api/media/upload/${mediaId}/chunks/${index}`, {
    method: 'PUT',
    headers: { ...user.auth, 'content-type': 'application/octet-stream', ...headers },
    body: bytes as Uint8Array<ArrayBuffer>,
  });
}

export function complete(t: Target, user: TestUser, mediaId: string) {
  return t.fetch('/api/media/upload/complete', post({ media_id: mediaId }, user.auth));
}

/** Starts, sends every chunk and completes; returns the media info and the file. */
export async function uploadFile(t: Target, user: TestUser, groupId: string, size = 1000, extra: Record<string, unknown> = {}) {
  const file = randomFile(size);
  const started = await startUpload(t, user, groupId, size, extra);
  for (let i = 0; i < started.chunk_count; i++) await expectStatus(await putChunk(t, user, started.media_id, i, chunkOf(file, i)), 200);
  const res = await complete(t, user, started.media_id);
  await expectStatus(res, 201);
  return { info: await json(res), file, mediaId: started.media_id as string };
}

export async function quotaOf(t: Target, groupId: string) {
  const [q] = await t.sql<Record<string, string>>('select * from group_quotas where group_id = $1', [groupId]);
  return {
    bytes_used: Number(q!.bytes_used),
    bytes_reserved: Number(q!.bytes_reserved),
    files_used: Number(q!.files_used),
    files_reserved: Number(q!.files_reserved),
  };
}

/** What the quota row must say according to the media rows. */
export async function quotaFromRows(t: Target, groupId: string) {
  const [r] = await t.sql<Record<string, string>>(
    `select coalesce(sum(size_bytes) filter (where status = 'complete'), 0) as bytes_used,
            coalesce(sum(size_bytes) filter (where status = 'uploading'), 0) as bytes_reserved,
            count(*) filter (where status = 'complete') as files_used,
            count(*) filter (where status = 'uploading') as files_reserved
       from media where group_id = $1`,
    [groupId],
  );
  return {
    bytes_used: Number(r!.bytes_used),
    bytes_reserved: Number(r!.bytes_reserved),
    files_used: Number(r!.files_used),
    files_reserved: Number(r!.files_reserved),
  };
}

/** A thread row for attaching media (threads have their own routes; media only needs the row). */
export async function insertThread(t: Target, groupId: string, authorId: string): Promise<string> {
  const [row] = await t.sql<{ id: string }>(
    `with s as (update groups set last_seq = last_seq + 1 where id = $1 returning last_seq)
     insert into threads (group_id, author_id, key_epoch, encrypted_title, encrypted_body, last_activity_seq, seq)
     select $1, $2, 1, '\\x00', '\\x00', s.last_seq, s.last_seq from s returning id`,
    [groupId, authorId],
  );
  return row!.id;
}

export async function insertReply(t: Target, threadId: string, groupId: string, authorId: string): Promise<string> {
  const [row] = await t.sql<{ id: string }>(
    `with s as (update groups set last_seq = last_seq + 1 where id = $2 returning last_seq)
     insert into replies (thread_id, group_id, author_id, key_epoch, encrypted_body, seq)
     select $1, $2, $3, 1, '\\x00', s.last_seq from s returning id`,
    [threadId, groupId, authorId],
  );
  return row!.id;
}
