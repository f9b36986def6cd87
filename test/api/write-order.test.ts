// Writes ordered against the changes that take the right to write away. A removed member's
// writes never land after their member_left; a member whose key is pending changes no media; a
// chunk caught by an abort answers 409 and leaves no blob. The races only bite where transactions
// overlap (real Postgres: TEST_DATABASE_URL); PGlite runs one at a time, but the rules hold there too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, b64, createOrbit, expectError, expectStatus, json, post, publicKey, registerUser, type TestUser } from '../support/api';
import { newThread } from '../support/content';
import { CHUNK, chunkOf, complete, putChunk, randomFile, startUpload, uploadFile } from '../support/media';
import { eventLog, leave, pendingMember } from '../support/orbits';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const del = (user: TestUser, path: string) => t.fetch(path, { method: 'DELETE', headers: user.auth });

describe('a removed member’s writes', () => {
  it('never land after their member_left, and every write answered 201 is before it', async () => {
    const late: string[] = [];
    const statuses = new Set<number>();
    for (let trial = 0; trial < 4; trial++) {
      const owner = await registerUser(t);
      const orbit = await createOrbit(t, owner);
      const member = await addMember(t, owner, orbit);
      const thread = await newThread(t, owner, orbit.id);
      const writes = (n: number) =>
        Array.from({ length: n }, (_, i) => {
          const [path, body] = [
            [`/api/groups/${orbit.id}/messages`, { key_epoch: 1, envelope: b64(64) }],
            ['/api/threads', { group_id: orbit.id, key_epoch: 1, encrypted_title: b64(16), encrypted_body: b64(64) }],
            [`/api/threads/${thread.id}/replies`, { key_epoch: 1, encrypted_body: b64(64) }],
          ][i % 3]!;
          return t.fetch(path as string, post(body, member.auth));
        });
      // Writes already in flight when the removal starts, and more behind it.
      const before = writes(20);
      const removal = leave(t, owner, orbit.id, member.id);
      const after = writes(20);
      const answers = await Promise.all([...before, ...after]);
      await expectStatus(await removal, 204);

      const log = await eventLog(t, orbit.id);
      const left = log.find((e) => e.type === 'member_left' && e.data.user_id === member.id)!;
      expect(left).toBeDefined();
      for (const e of log) if (e.actor_id === member.id && e.seq > left.seq) late.push(`${e.type} at ${e.seq} > ${left.seq}`);
      for (const res of answers) {
        statuses.add(res.status);
        if (res.status === 201) {
          const { seq } = await json(res);
          if (seq > left.seq) late.push(`answered 201 at seq ${seq} > ${left.seq}`);
        } else {
          await expectError(res, 404, 'NOT_FOUND');
        }
      }
    }
    expect(late).toEqual([]);
    expect([...statuses].every((s) => s === 201 || s === 404)).toBe(true);
  }, 120_000);

  it('cannot start an upload that outlives their removal, nor deliver a key after it', async () => {
    const leftovers: unknown[] = [];
    for (let trial = 0; trial < 4; trial++) {
      const owner = await registerUser(t);
      const orbit = await createOrbit(t, owner);
      const member = await addMember(t, owner, orbit);
      const pending = await Promise.all([1, 2, 3, 4].map(() => pendingMember(t, owner, orbit)));
      const start = () => t.fetch('/api/media/upload', post({ group_id: orbit.id, key_epoch: 1, size_bytes: 100, encrypted_metadata: b64(32), encryption_iv: b64(8) }, member.auth));
      const deliver = (to: TestUser) => t.fetch(`/api/groups/${orbit.id}/members/${to.id}/keys`, post({ keys: [{ key_epoch: 1, encrypted_group_key: b64(64) }] }, member.auth, 'PUT'));
      const before = [start(), start(), ...pending.slice(0, 2).map(deliver)];
      const removal = leave(t, owner, orbit.id, member.id);
      const after = [start(), start(), ...pending.slice(2).map(deliver)];
      const answers = await Promise.all([...before, ...after]);
      await expectStatus(await removal, 204);
      expect(answers.map((r) => r.status).filter((s) => ![201, 204, 404].includes(s))).toEqual([]);
      const log = await eventLog(t, orbit.id);
      const left = log.find((e) => e.type === 'member_left' && e.data.user_id === member.id)!;
      leftovers.push(...log.filter((e) => e.actor_id === member.id && e.seq > left.seq));
      leftovers.push(...(await t.sql(`select id from media where group_id = $1 and status = 'uploading'`, [orbit.id])));
      leftovers.push(...(await t.sql('select bytes_reserved, files_reserved from group_quotas where group_id = $1 and (bytes_reserved <> 0 or files_reserved <> 0)', [orbit.id])));
    }
    expect(leftovers).toEqual([]);
  }, 120_000);
});

describe('media routes and KEY_PENDING', () => {
  /** A member with an open upload (one chunk in) and a completed file, whose key then goes pending. */
  async function pendingUploader() {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const thread = await newThread(t, owner, orbit.id);
    const file = randomFile(CHUNK + 100);
    const open = await startUpload(t, member, orbit.id, file.length);
    await expectStatus(await putChunk(t, member, open.media_id, 0, chunkOf(file, 0)), 200);
    const done = await uploadFile(t, member, orbit.id, 500);
    const ownersFile = await uploadFile(t, owner, orbit.id, 500);
    const replaced = await t.fetch('/api/users/me/public-key', post({ public_key: publicKey() }, member.auth, 'PUT'));
    await expectStatus(replaced, 204);
    return { owner, orbit, member, thread, file, open, done, ownersFile };
  }

  const patch = (user: TestUser, mediaId: string, body: unknown) => t.fetch(`/api/media/${mediaId}`, post(body, user.auth, 'PATCH'));

  it('refuses chunk, complete, attach, abort and delete with 403 KEY_PENDING and changes nothing', async () => {
    const { member, thread, file, open, done } = await pendingUploader();
    await expectError(await putChunk(t, member, open.media_id, 1, chunkOf(file, 1)), 403, 'KEY_PENDING');
    await expectError(await complete(t, member, open.media_id), 403, 'KEY_PENDING');
    await expectError(await patch(member, done.mediaId, { thread_id: thread.id }), 403, 'KEY_PENDING');
    await expectError(await del(member, `/api/media/upload/${open.media_id}`), 403, 'KEY_PENDING');
    await expectError(await del(member, `/api/media/${done.mediaId}`), 403, 'KEY_PENDING');

    const rows = await t.sql<{ id: string; status: string; thread_id: string | null; chunks: string | number }>(
      'select m.id, m.status, m.thread_id, (select count(*) from media_chunks c where c.media_id = m.id) as chunks from media m where m.id = any($1) order by m.created_at',
      [[open.media_id, done.mediaId]],
    );
    expect(rows.map((r) => [r.id, r.status, r.thread_id, Number(r.chunks)])).toEqual([
      [open.media_id, 'uploading', null, 1],
      [done.mediaId, 'complete', null, 1],
    ]);
  });

  it('refuses an owner who has just reset their key deleting another member’s file or upload', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const theirs = await uploadFile(t, member, orbit.id, 500);
    const open = await startUpload(t, member, orbit.id, 100);
    await expectStatus(await t.fetch('/api/users/me/public-key', post({ public_key: publicKey() }, owner.auth, 'PUT')), 204);
    await expectError(await del(owner, `/api/media/${theirs.mediaId}`), 403, 'KEY_PENDING');
    await expectError(await del(owner, `/api/media/upload/${open.media_id}`), 403, 'KEY_PENDING');
    const res = await t.fetch(`/api/media/${theirs.mediaId}/download`, { headers: member.auth });
    await expectStatus(res, 200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(theirs.file);
  });

  it('tells a member who may not do it at all FORBIDDEN first, whatever their key', async () => {
    const { owner, member, ownersFile } = await pendingUploader();
    await expectError(await del(member, `/api/media/${ownersFile.mediaId}`), 403, 'FORBIDDEN');
    await expectError(await patch(member, ownersFile.mediaId, { thread_id: null }), 403, 'FORBIDDEN');
    await expectStatus(await del(owner, `/api/media/${ownersFile.mediaId}`), 204);
  });
});

describe('a chunk in flight while its upload is aborted', () => {
  it('answers 200, 409 or 410 over many racing trials, never 500, and leaves no blob', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const statuses: number[] = [];
    const file = randomFile(CHUNK + 10);
    for (let trial = 0; trial < 24; trial++) {
      const open = await startUpload(t, owner, orbit.id, file.length);
      // Full-size chunks and staggered aborts: some land before the chunk, some under it, some after.
      const [chunk, abort] = await Promise.all([
        putChunk(t, owner, open.media_id, 0, chunkOf(file, 0)),
        new Promise((r) => setTimeout(r, (trial % 8) * 3)).then(() => del(owner, `/api/media/upload/${open.media_id}`)),
      ]);
      statuses.push(chunk.status);
      await chunk.arrayBuffer();
      await expectStatus(abort, 204);
    }
    expect(statuses.filter((s) => ![200, 409, 410].includes(s))).toEqual([]);
    expect(await t.blobKeys(`media/${orbit.id}`)).toEqual([]);
  }, 120_000);

  it('a chunk racing completion answers 200 or 409, and the file stays whole', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    for (let trial = 0; trial < 6; trial++) {
      const file = randomFile(1000);
      const open = await startUpload(t, owner, orbit.id, file.length);
      await expectStatus(await putChunk(t, owner, open.media_id, 0, file), 200);
      const [again, done] = await Promise.all([putChunk(t, owner, open.media_id, 0, file), complete(t, owner, open.media_id)]);
      expect([200, 409]).toContain(again.status);
      await again.arrayBuffer();
      await expectStatus(done, 201);
      const res = await t.fetch(`/api/media/${open.media_id}/download`, { headers: owner.auth });
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(file);
    }
  });
});
