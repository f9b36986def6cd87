// Cleanup of media: expired files (blob, row, quota, event), stale upload sessions, the blob
// queue after a crash, and two runs at once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { createOrbit, expectError, expectStatus, registerUser, type TestUser } from '../support/api';
import { putChunk, quotaFromRows, quotaOf, randomFile, startUpload, uploadFile } from '../support/media';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const keyOf = (groupId: string, mediaId: string) => `media/${groupId}/${mediaId}`;
const expire = (ids: string[]) => t.sql(`update media set expires_at = now() - interval '1 minute' where id = any($1::uuid[])`, [ids]);
const staleUploads = (ids: string[]) => t.sql(`update media set upload_expires_at = now() - interval '1 minute' where id = any($1::uuid[])`, [ids]);
const queued = (keys: string[]) => t.sql(`select blob_key from blob_deletions where blob_key = any($1::text[])`, [keys]);
const expiredEvents = (groupId: string) =>
  t.sql<{ subject_id: string; seq: string; data: any }>(`select subject_id, seq, data from orbit_events where group_id = $1 and type = 'media_expired' order by seq`, [groupId]);

async function orbitWithOwner(): Promise<{ owner: TestUser; groupId: string }> {
  const owner = await registerUser(t);
  return { owner, groupId: (await createOrbit(t, owner)).id };
}

describe('cleanup', () => {
  it('deletes expired files (blob and row), expires stale uploads, releases their reservations and reports the quota', async () => {
    const { owner, groupId } = await orbitWithOwner();
    const gone = await uploadFile(t, owner, groupId, 3000);
    const kept = await uploadFile(t, owner, groupId, 2000);
    const stale = await startUpload(t, owner, groupId, 700);
    await expectStatus(await putChunk(t, owner, stale.media_id, 0, randomFile(700)), 200);
    const fresh = await startUpload(t, owner, groupId, 500);
    await expire([gone.mediaId]);
    await staleUploads([stale.media_id]);
    expect(await t.blobKeys(keyOf(groupId, gone.mediaId))).toHaveLength(1);

    await t.cleanup();

    expect(await t.sql(`select id from media where id = $1`, [gone.mediaId])).toEqual([]);
    expect(await t.blobKeys(keyOf(groupId, gone.mediaId))).toEqual([]);
    expect(await t.blobKeys(keyOf(groupId, stale.media_id))).toEqual([]);
    expect(await t.blobKeys(keyOf(groupId, kept.mediaId))).toHaveLength(1);
    expect(await queued([keyOf(groupId, gone.mediaId), keyOf(groupId, stale.media_id)])).toEqual([]);
    const statuses = await t.sql<{ id: string; status: string }>(`select id, status from media where group_id = $1 order by status`, [groupId]);
    expect(Object.fromEntries(statuses.map((s) => [s.id, s.status]))).toEqual({ [kept.mediaId]: 'complete', [stale.media_id]: 'expired', [fresh.media_id]: 'uploading' });
    expect(await quotaOf(t, groupId)).toEqual({ bytes_used: 2000, files_used: 1, bytes_reserved: 500, files_reserved: 1 });

    const events = await expiredEvents(groupId);
    expect(events).toHaveLength(1);
    expect(events[0]!.subject_id).toBe(gone.mediaId);
    expect(events[0]!.data).toMatchObject({ id: gone.mediaId, quota: { bytes_used: 2000, files_used: 1, bytes_reserved: 500, files_reserved: 1 } });
    const uploaded = await t.sql<{ data: any }>(`select data from orbit_events where subject_id = $1 and type = 'media_uploaded'`, [gone.mediaId]);
    expect(uploaded[0]!.data).toEqual({ id: gone.mediaId, deleted: true });

    await expectError(await putChunk(t, owner, stale.media_id, 0, randomFile(700)), 410, 'GONE');
    await expectError(await t.fetch(`/api/media/${gone.mediaId}/download`, { headers: owner.auth }), 410, 'GONE');
    // Nothing left to do: a second run changes nothing.
    await t.cleanup();
    expect(await expiredEvents(groupId)).toHaveLength(1);
    expect(await quotaOf(t, groupId)).toEqual(await quotaFromRows(t, groupId));
  });

  it('a run interrupted after deleting a blob (its queue entry left behind) is finished cleanly by the next', async () => {
    const { owner, groupId } = await orbitWithOwner();
    const file = await uploadFile(t, owner, groupId, 1500);
    await expire([file.mediaId]);
    await t.cleanup();
    expect(await t.blobKeys(keyOf(groupId, file.mediaId))).toEqual([]);
    // The state a crash leaves between the blob's deletion and its queue row's: a claimed entry
    // (attempted once, its claim since lapsed) for a blob that no longer exists.
    await t.sql(`insert into blob_deletions (blob_key, attempts, next_attempt_at) values ($1, 1, now() - interval '1 second')`, [keyOf(groupId, file.mediaId)]);
    await t.cleanup();
    expect(await queued([keyOf(groupId, file.mediaId)])).toEqual([]);
    expect(await expiredEvents(groupId)).toHaveLength(1);
    expect(await quotaOf(t, groupId)).toEqual(await quotaFromRows(t, groupId));
  });

  it('a run interrupted after its row transaction, before the blob went, is finished by the next', async () => {
    const { owner, groupId } = await orbitWithOwner();
    const file = await uploadFile(t, owner, groupId, 1600);
    // What the first transaction commits: the row gone with its quota, the blob queued.
    await t.sql(
      `with gone as (delete from media where id = $1 returning blob_key, upload_handle, group_id, size_bytes),
            q as (update group_quotas set bytes_used = bytes_used - gone.size_bytes, files_used = files_used - 1 from gone where group_quotas.group_id = gone.group_id)
       insert into blob_deletions (blob_key, upload_handle) select blob_key, upload_handle from gone`,
      [file.mediaId],
    );
    expect(await t.blobKeys(keyOf(groupId, file.mediaId))).toHaveLength(1);
    await t.cleanup();
    expect(await t.blobKeys(keyOf(groupId, file.mediaId))).toEqual([]);
    expect(await queued([keyOf(groupId, file.mediaId)])).toEqual([]);
    expect(await quotaOf(t, groupId)).toEqual({ bytes_used: 0, files_used: 0, bytes_reserved: 0, files_reserved: 0 });
  });

  it('two runs at once remove each file once, with one event each, gap-free seqs and exact quotas', async () => {
    const a = await orbitWithOwner();
    const b = await orbitWithOwner();
    const files: Array<{ groupId: string; mediaId: string }> = [];
    for (const o of [a, b]) for (let i = 0; i < 3; i++) files.push({ groupId: o.groupId, mediaId: (await uploadFile(t, o.owner, o.groupId, 100 + i)).mediaId });
    const stale = [await startUpload(t, a.owner, a.groupId, 50), await startUpload(t, b.owner, b.groupId, 60)];
    const keep = await uploadFile(t, a.owner, a.groupId, 77);
    await expire(files.map((f) => f.mediaId));
    await staleUploads(stale.map((s) => s.media_id));

    await Promise.all([t.cleanup(), t.cleanup()]);

    for (const o of [a, b]) {
      const events = await expiredEvents(o.groupId);
      expect(events.map((e) => e.subject_id).sort()).toEqual(files.filter((f) => f.groupId === o.groupId).map((f) => f.mediaId).sort());
      const seqs = (await t.sql<{ seq: string }>(`select seq from orbit_events where group_id = $1 order by seq`, [o.groupId])).map((r) => Number(r.seq));
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
      expect(await quotaOf(t, o.groupId)).toEqual(await quotaFromRows(t, o.groupId));
      expect(await quotaOf(t, o.groupId)).toMatchObject({ bytes_reserved: 0, files_reserved: 0 });
    }
    expect(await quotaOf(t, a.groupId)).toMatchObject({ bytes_used: 77, files_used: 1 });
    for (const f of files) expect(await t.blobKeys(keyOf(f.groupId, f.mediaId))).toEqual([]);
    expect(await queued(files.map((f) => keyOf(f.groupId, f.mediaId)))).toEqual([]);
    expect(await t.blobKeys(keyOf(a.groupId, keep.mediaId))).toHaveLength(1);
  });

  it('sweeps aborted and expired upload rows a week after their deadline', async () => {
    const { owner, groupId } = await orbitWithOwner();
    const old = await startUpload(t, owner, groupId, 10);
    const recent = await startUpload(t, owner, groupId, 10);
    for (const u of [old, recent]) await expectStatus(await t.fetch(`/api/media/upload/${u.media_id}`, { method: 'DELETE', headers: owner.auth }), 204);
    await t.sql(`update media set upload_expires_at = now() - interval '8 days' where id = $1`, [old.media_id]);
    await t.cleanup();
    const left = await t.sql<{ id: string }>(`select id from media where group_id = $1`, [groupId]);
    expect(left.map((r) => r.id)).toEqual([recent.media_id]);
  });
});
