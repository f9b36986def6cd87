// Helpers for tests of orbit content: threads, replies, messages, events, media rows.
import { expect } from 'vitest';
import { b64, createInvite, expectStatus, joinOrbit, json, post, registerUser, type TestUser } from './api';
import type { Target } from './types';

export async function newThread(t: Target, user: TestUser, groupId: string, extra: Record<string, unknown> = {}) {
  const res = await t.fetch('/api/threads', post({ group_id: groupId, key_epoch: 1, encrypted_title: b64(40), encrypted_body: b64(200), ...extra }, user.auth));
  await expectStatus(res, 201);
  return json(res);
}

export async function newReply(t: Target, user: TestUser, threadId: string, extra: Record<string, unknown> = {}) {
  const res = await t.fetch(`/api/threads/${threadId}/replies`, post({ key_epoch: 1, encrypted_body: b64(100), ...extra }, user.auth));
  await expectStatus(res, 201);
  return json(res);
}

export async function getJson(t: Target, user: TestUser, path: string, status = 200) {
  const res = await t.fetch(path, { headers: user.auth });
  await expectStatus(res, status);
  return json(res);
}

/** Every event after a seq, following next_after_seq to the end. */
export async function allEvents(t: Target, user: TestUser, groupId: string, afterSeq = 0) {
  const items: any[] = [];
  for (let after = afterSeq; ; ) {
    const page = await getJson(t, user, `/api/groups/${groupId}/events?after_seq=${after}&limit=100`);
    items.push(...page.items);
    if (page.items.length < 100) return items;
    after = page.next_after_seq;
  }
}

/** A member who joined but holds no key yet. */
export async function pendingMember(t: Target, owner: TestUser, groupId: string): Promise<TestUser> {
  const user = await registerUser(t);
  await joinOrbit(t, user, await createInvite(t, owner, groupId));
  return user;
}

/**
 * A completed media row attached to a thread or reply, counted in the orbit's quota as the media
 * routes would count it (this branch has no media routes: rows and counters are set directly).
 */
export async function insertMedia(
  t: Target,
  input: { groupId: string; authorId: string; threadId?: string; replyId?: string; sizeBytes: number; status?: 'complete' | 'uploading' },
) {
  const blobKey = `test/${input.groupId}/${crypto.randomUUID()}`;
  const status = input.status ?? 'complete';
  const [row] = await t.sql<{ id: string }>(
    `insert into media (group_id, thread_id, reply_id, author_id, key_epoch, encrypted_metadata, encryption_iv, size_bytes, chunk_count, status, blob_key, upload_expires_at, uploaded_at, expires_at)
     values ($1, $2, $3, $4, 1, decode('00', 'hex'), 'iv', $5, 1, $6, $7, now() + interval '1 day', now(), now() + interval '7 days') returning id`,
    [input.groupId, input.threadId ?? null, input.replyId ?? null, input.authorId, input.sizeBytes, status, blobKey],
  );
  const used = status === 'complete';
  await t.sql(
    `update group_quotas set bytes_used = bytes_used + $2, files_used = files_used + $3, bytes_reserved = bytes_reserved + $4, files_reserved = files_reserved + $5 where group_id = $1`,
    [input.groupId, used ? input.sizeBytes : 0, used ? 1 : 0, used ? 0 : input.sizeBytes, used ? 0 : 1],
  );
  if (used && input.threadId) await t.sql('update threads set media_count = media_count + 1 where id = $1', [input.threadId]);
  return { id: row!.id, blobKey };
}

export async function quotaRow(t: Target, groupId: string) {
  const [q] = await t.sql<Record<string, string>>('select bytes_used, files_used, bytes_reserved, files_reserved from group_quotas where group_id = $1', [groupId]);
  expect(q).toBeDefined();
  return Object.fromEntries(Object.entries(q!).map(([k, v]) => [k, Number(v)]));
}

/** Base64 of `bytes` bytes of any size (stands in for large ciphertext; b64() is capped at 64 KiB). */
export const bigB64 = (bytes: number) => Buffer.alloc(bytes, 0xa5).toString('base64');
