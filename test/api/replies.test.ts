// Replies: the tree stays inside its thread, counts stay exact, deletion leaves a tombstone, and
// deleting a thread takes its replies and media along (quota released, blobs queued).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, b64, createOrbit, expectError, expectStatus, json, post, registerUser } from '../support/api';
import { allEvents, bigB64, getJson, insertMedia, newReply, newThread, quotaRow } from '../support/content';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const REPLY_FIELDS = ['author_id', 'author_username', 'created_at', 'deleted', 'encrypted_body', 'group_id', 'id', 'key_epoch', 'parent_reply_id', 'seq', 'thread_id'];

describe('creating replies', () => {
  it('returns the reply with the contract fields and bumps the thread’s count and activity', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const thread = await newThread(t, owner, orbit.id);
    const body = b64(300);
    const res = await t.fetch(`/api/threads/${thread.id}/replies`, post({ key_epoch: 1, encrypted_body: body }, member.auth));
    await expectStatus(res, 201);
    const reply = await json(res);
    expect(Object.keys(reply).sort()).toEqual(REPLY_FIELDS);
    expect(reply).toMatchObject({
      thread_id: thread.id,
      group_id: orbit.id,
      author_id: member.id,
      author_username: member.username,
      key_epoch: 1,
      parent_reply_id: null,
      encrypted_body: body,
      deleted: false,
      seq: thread.seq + 1,
    });
    const child = await newReply(t, owner, thread.id, { parent_reply_id: reply.id });
    expect(child.parent_reply_id).toBe(reply.id);
    const after = await getJson(t, owner, `/api/threads/${thread.id}`);
    expect(after).toMatchObject({ reply_count: 2, last_activity_seq: child.seq, last_activity_at: child.created_at, seq: thread.seq });
  });

  it('refuses a parent outside this thread with 400, whether or not it exists', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const a = await newThread(t, owner, orbit.id);
    const b = await newThread(t, owner, orbit.id);
    const inB = await newReply(t, owner, b.id);
    for (const parent of [inB.id, crypto.randomUUID()]) {
      const err = await expectError(
        await t.fetch(`/api/threads/${a.id}/replies`, post({ key_epoch: 1, encrypted_body: b64(10), parent_reply_id: parent }, owner.auth)),
        400,
        'VALIDATION_ERROR',
      );
      expect(err.details?.field).toBe('parent_reply_id');
    }
    await expectError(
      await t.fetch(`/api/threads/${a.id}/replies`, post({ key_epoch: 1, encrypted_body: b64(10), parent_reply_id: 'nope' }, owner.auth)),
      400,
      'VALIDATION_ERROR',
    );
    expect((await getJson(t, owner, `/api/threads/${a.id}`)).reply_count).toBe(0);
  });

  it('answers 404 for a thread of another orbit, exactly as for a missing thread', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const theirs = await registerUser(t);
    const otherOrbit = await createOrbit(t, theirs);
    const foreign = await newThread(t, theirs, otherOrbit.id);
    const send = (threadId: string) => t.fetch(`/api/threads/${threadId}/replies`, post({ key_epoch: 1, encrypted_body: b64(10) }, owner.auth));
    const a = await expectError(await send(foreign.id), 404, 'NOT_FOUND');
    const b = await expectError(await send(crypto.randomUUID()), 404, 'NOT_FOUND');
    expect(a.message).toBe(b.message);
    await expectError(await t.fetch(`/api/threads/${foreign.id}/replies`, { headers: owner.auth }), 404, 'NOT_FOUND');
    // A reply in one's own orbit cannot name a parent in another orbit either.
    const foreignReply = await newReply(t, theirs, foreign.id);
    const mine = await newThread(t, owner, orbit.id);
    await expectError(
      await t.fetch(`/api/threads/${mine.id}/replies`, post({ key_epoch: 1, encrypted_body: b64(10), parent_reply_id: foreignReply.id }, owner.auth)),
      400,
      'VALIDATION_ERROR',
    );
    expect(await t.sql('select id from replies where thread_id = $1', [foreign.id])).toHaveLength(1);
  });

  it('caps the body at 64 KiB decoded and refuses non-base64', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const thread = await newThread(t, owner, orbit.id);
    const send = (body: string) => t.fetch(`/api/threads/${thread.id}/replies`, post({ key_epoch: 1, encrypted_body: body }, owner.auth));
    await expectStatus(await send(bigB64(65536)), 201);
    await expectError(await send(bigB64(65537)), 413, 'PAYLOAD_TOO_LARGE');
    await expectError(await send('%%%%'), 400, 'VALIDATION_ERROR');
    await expectError(await send(bigB64(300_000)), 413, 'PAYLOAD_TOO_LARGE');
  });
});

describe('listing replies', () => {
  it('lists oldest first, newest first with order=desc, and pages by seq', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const thread = await newThread(t, owner, orbit.id);
    const other = await newThread(t, owner, orbit.id);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      ids.push((await newReply(t, owner, thread.id)).id);
      await newReply(t, owner, other.id);
    }
    const collect = async (order: string) => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: any = await getJson(t, owner, `/api/threads/${thread.id}/replies?limit=3&order=${order}${cursor ? `&cursor=${cursor}` : ''}`);
        seen.push(...page.items.map((r: any) => r.id));
        cursor = page.next_cursor;
      } while (cursor);
      return seen;
    };
    expect(await collect('asc')).toEqual(ids);
    expect(await collect('desc')).toEqual([...ids].reverse());
    const all = await getJson(t, owner, `/api/threads/${thread.id}/replies`);
    expect(all.items.map((r: any) => r.id)).toEqual(ids);
    expect(all.next_cursor).toBeNull();
    await expectError(await t.fetch(`/api/threads/${thread.id}/replies?cursor=abc`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
    await expectError(await t.fetch(`/api/threads/${thread.id}/replies?order=sideways`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
  });
});

describe('deleting replies', () => {
  it('leaves a tombstone, keeps the tree, decrements reply_count; author or owner only', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const author = await addMember(t, owner, orbit);
    const other = await addMember(t, owner, orbit);
    const thread = await newThread(t, owner, orbit.id);
    const parent = await newReply(t, author, thread.id);
    const child = await newReply(t, other, thread.id, { parent_reply_id: parent.id });
    const del = (id: string, user: typeof owner) => t.fetch(`/api/replies/${id}`, { method: 'DELETE', headers: user.auth });
    await expectError(await del(parent.id, other), 403, 'FORBIDDEN');
    await expectStatus(await del(parent.id, author), 204);
    await expectError(await del(parent.id, author), 404, 'NOT_FOUND');
    const list = await getJson(t, other, `/api/threads/${thread.id}/replies`);
    expect(list.items).toEqual([
      { ...parent, encrypted_body: null, deleted: true },
      child,
    ]);
    expect((await getJson(t, owner, `/api/threads/${thread.id}`)).reply_count).toBe(1);
    // A tombstone can still be answered: the tree holds.
    await newReply(t, owner, thread.id, { parent_reply_id: parent.id });
    await expectStatus(await del(child.id, owner), 204);
    expect((await getJson(t, owner, `/api/threads/${thread.id}`)).reply_count).toBe(1);
    const stranger = await registerUser(t);
    await expectError(await del(crypto.randomUUID(), owner), 404, 'NOT_FOUND');
    const reply = await newReply(t, owner, thread.id);
    await expectError(await del(reply.id, stranger), 404, 'NOT_FOUND');
    const stored = await t.sql<{ encrypted_body: unknown }>('select encrypted_body from replies where id = $1', [parent.id]);
    expect(stored[0]!.encrypted_body).toBeNull();
  });

  it('removes the reply’s media and releases their quota', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const thread = await newThread(t, owner, orbit.id);
    const reply = await newReply(t, owner, thread.id);
    const kept = await insertMedia(t, { groupId: orbit.id, authorId: owner.id, threadId: thread.id, sizeBytes: 1000 });
    const gone = await insertMedia(t, { groupId: orbit.id, authorId: owner.id, threadId: thread.id, replyId: reply.id, sizeBytes: 4000 });
    expect(await quotaRow(t, orbit.id)).toMatchObject({ bytes_used: 5000, files_used: 2 });
    await expectStatus(await t.fetch(`/api/replies/${reply.id}`, { method: 'DELETE', headers: owner.auth }), 204);
    expect(await quotaRow(t, orbit.id)).toMatchObject({ bytes_used: 1000, files_used: 1 });
    expect((await t.sql('select id from media where id = $1', [gone.id])).length).toBe(0);
    expect((await t.sql('select id from media where id = $1', [kept.id])).length).toBe(1);
    expect(await t.sql('select blob_key from blob_deletions where blob_key = $1', [gone.blobKey])).toHaveLength(1);
    expect((await getJson(t, owner, `/api/threads/${thread.id}`)).media_count).toBe(1);
    const events = await allEvents(t, owner, orbit.id);
    const deleted = events.find((e) => e.type === 'reply_deleted');
    expect(deleted.data).toMatchObject({ id: reply.id, thread_id: thread.id, media_ids: [gone.id], quota: { bytes_used: 1000, files_used: 1 } });
  });
});

describe('deleting a thread', () => {
  it('takes its replies and media along, frees their quota and queues their blobs', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const thread = await newThread(t, member, orbit.id);
    const keep = await newThread(t, owner, orbit.id);
    const r1 = await newReply(t, owner, thread.id);
    await newReply(t, member, thread.id, { parent_reply_id: r1.id });
    await t.fetch(`/api/threads/${thread.id}/read`, post({ seq: r1.seq }, owner.auth, 'PUT'));
    const onThread = await insertMedia(t, { groupId: orbit.id, authorId: member.id, threadId: thread.id, sizeBytes: 10_000 });
    const onReply = await insertMedia(t, { groupId: orbit.id, authorId: owner.id, replyId: r1.id, sizeBytes: 20_000 });
    const uploading = await insertMedia(t, { groupId: orbit.id, authorId: owner.id, threadId: thread.id, sizeBytes: 5_000, status: 'uploading' });
    const elsewhere = await insertMedia(t, { groupId: orbit.id, authorId: owner.id, threadId: keep.id, sizeBytes: 7_000 });
    expect(await quotaRow(t, orbit.id)).toEqual({ bytes_used: 37_000, files_used: 3, bytes_reserved: 5_000, files_reserved: 1 });

    await expectStatus(await t.fetch(`/api/threads/${thread.id}`, { method: 'DELETE', headers: owner.auth }), 204);

    expect(await quotaRow(t, orbit.id)).toEqual({ bytes_used: 7_000, files_used: 1, bytes_reserved: 0, files_reserved: 0 });
    expect(await t.sql('select id from replies where thread_id = $1', [thread.id])).toEqual([]);
    expect(await t.sql('select thread_id from read_markers where thread_id = $1', [thread.id])).toEqual([]);
    const left = await t.sql<{ id: string }>('select id from media where group_id = $1', [orbit.id]);
    expect(left.map((m) => m.id)).toEqual([elsewhere.id]);
    const queued = await t.sql<{ blob_key: string }>('select blob_key from blob_deletions where blob_key = any($1)', [
      [onThread.blobKey, onReply.blobKey, uploading.blobKey, elsewhere.blobKey],
    ]);
    expect(queued.map((q) => q.blob_key).sort()).toEqual([onThread.blobKey, onReply.blobKey, uploading.blobKey].sort());

    const events = await allEvents(t, member, orbit.id);
    const last = events[events.length - 1];
    expect(last).toMatchObject({ type: 'thread_deleted', actor_id: owner.id, data: { id: thread.id, quota: { bytes_used: 7_000, files_used: 1, bytes_reserved: 0 } } });
    expect([...last.data.media_ids].sort()).toEqual([onThread.id, onReply.id, uploading.id].sort());
    expect((await getJson(t, owner, `/api/threads/${keep.id}`)).media_count).toBe(1);
  });
});
