// The Worker's cron: the real `scheduled` handler removes expired R2 objects and their rows,
// aborts stale multipart uploads and leaves live files alone.
import { env } from 'cloudflare:test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import type { WorkerEnv } from '../../src/runtime/worker-deps';
import { createOrbit, expectError, registerUser } from '../support/api';
import { quotaFromRows, quotaOf, startUpload, uploadFile } from '../support/media';
import type { Target } from '../support/types';

const bucket = (env as unknown as WorkerEnv).MEDIA;
let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

describe('scheduled cleanup on Workers', () => {
  it('deletes expired media from R2 and the database, and expires stale uploads', async () => {
    const owner = await registerUser(t);
    const groupId = (await createOrbit(t, owner)).id;
    const expired = await uploadFile(t, owner, groupId, 5000);
    const live = await uploadFile(t, owner, groupId, 3000);
    const stale = await startUpload(t, owner, groupId, 100);
    const key = (id: string) => `media/${groupId}/${id}`;
    expect(await bucket.head(key(expired.mediaId))).not.toBeNull();
    await t.sql(`update media set expires_at = now() - interval '1 minute' where id = $1`, [expired.mediaId]);
    await t.sql(`update media set upload_expires_at = now() - interval '1 minute' where id = $1`, [stale.media_id]);
    const [{ handle }] = (await t.sql<{ handle: string }>(`select upload_handle as handle from media where id = $1`, [stale.media_id])) as [{ handle: string }];

    await t.cleanup();

    expect(await bucket.head(key(expired.mediaId))).toBeNull();
    expect(await bucket.head(key(live.mediaId))).not.toBeNull();
    expect(await t.sql(`select id from media where id = $1`, [expired.mediaId])).toEqual([]);
    expect(await t.sql(`select status from media where id = $1`, [stale.media_id])).toEqual([{ status: 'expired' }]);
    expect(await t.sql(`select 1 from blob_deletions where blob_key = any($1::text[])`, [[key(expired.mediaId), key(stale.media_id)]])).toEqual([]);
    // The stale session's multipart upload was aborted: it takes no more parts.
    await expect(bucket.resumeMultipartUpload(key(stale.media_id), handle).uploadPart(1, new Uint8Array(100))).rejects.toThrow();
    expect(await quotaOf(t, groupId)).toEqual(await quotaFromRows(t, groupId));
    expect(await quotaOf(t, groupId)).toEqual({ bytes_used: 3000, files_used: 1, bytes_reserved: 0, files_reserved: 0 });
    await expectError(await t.fetch(`/api/media/${expired.mediaId}/download`, { headers: owner.auth }), 410, 'GONE');
    const bytes = new Uint8Array(await (await t.fetch(`/api/media/${live.mediaId}/download`, { headers: owner.auth })).arrayBuffer());
    expect(bytes.length).toBe(3000);
  });
});
