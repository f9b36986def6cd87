// One user's uploads overlapping on real Postgres (PGlite runs one transaction at a time): an
// upload completing while the same user starts the next one used to deadlock now and then (a
// 503), found by the soak benchmark. Many rounds, so a regression shows up in most runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addMember, createOrbit, post, registerUser, type TestOrbit, type TestUser } from '../support/api';
import { complete, putChunk, randomFile, startUpload, startUploadRaw } from '../support/media';
import { createTarget } from '../support/node-target';
import type { Target } from '../support/types';

let t: Target;
let user: TestUser;
let orbit: TestOrbit;
beforeAll(async () => {
  t = await createTarget();
  user = await registerUser(t);
  orbit = await createOrbit(t, user);
});
afterAll(() => t?.close());

describe.skipIf(!process.env.TEST_DATABASE_URL)('overlapping uploads of one user on Postgres (skipped: set TEST_DATABASE_URL to run it)', () => {
  it('a completion beside the next start never deadlocks', async () => {
    const statuses: number[] = [];
    for (let round = 0; round < 60; round++) {
      const done = await startUpload(t, user, orbit.id, 100);
      await expect(putChunk(t, user, done.media_id, 0, randomFile(100))).resolves.toHaveProperty('status', 200);
      const [completed, next] = await Promise.all([complete(t, user, done.media_id), startUploadRaw(t, user, orbit.id, 100)]);
      statuses.push(completed.status, next.status);
      if (next.status === 201) await t.fetch(`/api/media/upload/${(await next.json()).media_id}`, { method: 'DELETE', headers: user.auth });
      await t.fetch(`/api/media/${done.media_id}`, { method: 'DELETE', headers: user.auth });
    }
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
  }, 120_000);

  it('handing the orbit to a member while they start uploads never deadlocks', async () => {
    const statuses: number[] = [];
    for (let round = 0; round < 10; round++) {
      const owner = await registerUser(t);
      const group = await createOrbit(t, owner);
      const heir = await addMember(t, owner, group);
      const starts = [1, 2, 3].map(() => startUploadRaw(t, heir, group.id, 100));
      const transfer = t.fetch(`/api/groups/${group.id}/owner`, post({ user_id: heir.id }, owner.auth, 'PUT'));
      for (const res of [...(await Promise.all(starts)), await transfer]) statuses.push(res.status === 201 || res.status === 204 ? res.status : (await res.text()) as never);
    }
    expect(statuses.filter((s) => s !== 201 && s !== 204)).toEqual([]);
  }, 120_000);
});
