// Files after upload: attaching to threads and replies, deleting (quota at once, event, blob).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, createOrbit, expectError, expectStatus, json, post, registerUser } from '../support/api';
import { insertReply, insertThread, quotaFromRows, quotaOf, startUpload, uploadFile } from '../support/media';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const mediaCount = async (threadId: string) => Number((await t.sql<{ n: string }>(`select media_count as n from threads where id = $1`, [threadId]))[0]!.n);

describe('attaching', () => {
  it('moves a file between threads and replies of its orbit, keeping media counts exact', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const a = await insertThread(t, orbit.id, owner.id);
    const b = await insertThread(t, orbit.id, owner.id);
    const reply = await insertReply(t, b, orbit.id, owner.id);
    const { mediaId } = await uploadFile(t, owner, orbit.id, 10, { thread_id: a });
    expect(await mediaCount(a)).toBe(1);

    const patch = (body: unknown, user = owner) => t.fetch(`/api/media/${mediaId}`, post(body, user.auth, 'PATCH'));
    const toReply = await json(await expectStatus(await patch({ reply_id: reply }), 200));
    expect(toReply).toMatchObject({ id: mediaId, thread_id: b, reply_id: reply });
    expect([await mediaCount(a), await mediaCount(b)]).toEqual([0, 1]);
    expect(await json(await patch({ thread_id: a }))).toMatchObject({ thread_id: a, reply_id: null });
    expect([await mediaCount(a), await mediaCount(b)]).toEqual([1, 0]);
    expect(await json(await patch({ thread_id: null }))).toMatchObject({ thread_id: null, reply_id: null });
    expect([await mediaCount(a), await mediaCount(b)]).toEqual([0, 0]);

    await expectError(await patch({ thread_id: a, reply_id: reply }), 400, 'VALIDATION_ERROR');
    const elsewhere = await createOrbit(t, owner);
    const foreign = await insertThread(t, elsewhere.id, owner.id);
    await expectError(await patch({ thread_id: foreign }), 400, 'VALIDATION_ERROR');
    await expectError(await patch({ thread_id: 'not-a-uuid' }), 400, 'VALIDATION_ERROR');

    const member = await addMember(t, owner, orbit);
    await expectError(await patch({ thread_id: a }, member), 403, 'FORBIDDEN');
    await expectError(await patch({ thread_id: a }, await registerUser(t)), 404, 'NOT_FOUND');
  });

  it('attaches an upload still in progress; the count follows once it completes', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const thread = await insertThread(t, orbit.id, owner.id);
    const { media_id } = await startUpload(t, owner, orbit.id, 10);
    const info = await json(await expectStatus(await t.fetch(`/api/media/${media_id}`, post({ thread_id: thread }, owner.auth, 'PATCH')), 200));
    expect(info).toMatchObject({ thread_id: thread, uploaded_at: null, expires_at: null });
    expect(await mediaCount(thread)).toBe(0);
    await t.fetch(`/api/media/upload/${media_id}/chunks/0`, { method: 'PUT', headers: { ...owner.auth, 'content-type': 'application/octet-stream' }, body: new Uint8Array(10) });
    await expectStatus(await t.fetch('/api/media/upload/complete', post({ media_id }, owner.auth)), 201);
    expect(await mediaCount(thread)).toBe(1);
  });
});

describe('deleting', () => {
  it('releases the quota at once, scrubs its events, emits media_deleted with the quota and removes the blob', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const thread = await insertThread(t, orbit.id, owner.id);
    const { mediaId } = await uploadFile(t, member, orbit.id, 4321, { thread_id: thread });
    expect(await quotaOf(t, orbit.id)).toMatchObject({ bytes_used: 4321, files_used: 1 });
    expect((await t.blobKeys(`media/${orbit.id}/`)).length).toBe(1);

    const other = await addMember(t, owner, orbit);
    await expectError(await t.fetch(`/api/media/${mediaId}`, { method: 'DELETE', headers: other.auth }), 403, 'FORBIDDEN');
    await expectError(await t.fetch(`/api/media/${mediaId}`, { method: 'DELETE', headers: (await registerUser(t)).auth }), 404, 'NOT_FOUND');
    await expectStatus(await t.fetch(`/api/media/${mediaId}`, { method: 'DELETE', headers: owner.auth }), 204);

    expect(await quotaOf(t, orbit.id)).toEqual({ bytes_used: 0, bytes_reserved: 0, files_used: 0, files_reserved: 0 });
    expect(await mediaCount(thread)).toBe(0);
    expect(await t.blobKeys(`media/${orbit.id}/`)).toEqual([]);
    await expectError(await t.fetch(`/api/media/${mediaId}/download`, { headers: member.auth }), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/media/${mediaId}`, { method: 'DELETE', headers: member.auth }), 404, 'NOT_FOUND');

    const events = await t.sql<{ type: string; data: any }>(`select type, data from orbit_events where group_id = $1 and subject_id = $2 order by seq`, [orbit.id, mediaId]);
    expect(events.map((e) => e.type)).toEqual(['media_uploaded', 'media_deleted']);
    expect(events[0]!.data).toEqual({ id: mediaId, deleted: true });
    expect(events[1]!.data).toMatchObject({ id: mediaId, thread_id: thread, quota: { bytes_used: 0, files_used: 0, bytes_limit: 10_737_418_240, files_limit: 100, warning: false } });
  });

  it('the uploader deletes an upload in progress: reservation released, no event', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const { media_id } = await startUpload(t, owner, orbit.id, 999);
    await expectStatus(await t.fetch(`/api/media/${media_id}`, { method: 'DELETE', headers: owner.auth }), 204);
    expect(await quotaOf(t, orbit.id)).toEqual(await quotaFromRows(t, orbit.id));
    expect(await quotaOf(t, orbit.id)).toMatchObject({ bytes_reserved: 0, files_reserved: 0 });
    expect(await t.sql(`select 1 from orbit_events where subject_id = $1`, [media_id])).toEqual([]);
  });
});
