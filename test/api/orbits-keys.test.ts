// Wrapped orbit keys: delivery (never overwritten), the caller's own wraps, rotation, key_status.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, b64, createOrbit, expectError, json, post, registerUser, type TestUser } from '../support/api';
import { deliver, getJson, newEvents, pendingMember, rotate } from '../support/orbits';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const ownKeys = (user: TestUser, groupId: string, query = '') => getJson(t, `/api/groups/${groupId}/keys${query}`, user);
const statusOf = async (viewer: TestUser, groupId: string) =>
  Object.fromEntries((await getJson(t, `/api/groups/${groupId}/members`, viewer)).items.map((m: any) => [m.user_id, [m.key_status, m.key_delivered_by]]));

describe('PUT /api/groups/:groupId/members/:userId/keys', () => {
  it('delivers a key once; delivering it again is 409 and the first wrap stays', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const helper = await addMember(t, owner, orbit);
    const member = await pendingMember(t, owner, orbit);
    const wrap = b64(300);
    const first = await t.fetch(`/api/groups/${orbit.id}/members/${member.id}/keys`, post({ keys: [{ key_epoch: 1, encrypted_group_key: wrap }] }, owner.auth, 'PUT'));
    expect(first.status).toBe(204);
    const seq = (await getJson(t, `/api/groups/${orbit.id}`, owner)).last_seq;

    for (const by of [owner, helper, member]) {
      const again = await expectError(await deliver(t, by, orbit.id, member.id), 409, 'CONFLICT');
      expect(again.details).toEqual({ delivered_key_epochs: [1] });
    }
    expect((await ownKeys(member, orbit.id)).items).toEqual([{ key_epoch: 1, encrypted_group_key: wrap, delivered_by: owner.id, delivered_at: expect.any(String) }]);
    expect(await newEvents(t, orbit.id, seq)).toEqual([]);
  });

  it('writes all epochs or none', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const a = await addMember(t, owner, orbit);
    const b = await pendingMember(t, owner, orbit);
    expect((await rotate(t, owner, orbit.id, 2, [owner.id, a.id])).status).toBe(201);
    expect((await deliver(t, owner, orbit.id, b.id, [1])).status).toBe(204);
    // Epoch 1 is taken, so epoch 2 is not written either.
    await expectError(await deliver(t, a, orbit.id, b.id, [2, 1]), 409, 'CONFLICT');
    expect((await ownKeys(b, orbit.id)).items.map((k: any) => k.key_epoch)).toEqual([1]);
    expect((await getJson(t, `/api/groups/${orbit.id}`, b)).key_status).toBe('pending');
    expect((await deliver(t, a, orbit.id, b.id, [2])).status).toBe(204);
    expect((await getJson(t, `/api/groups/${orbit.id}`, b)).key_status).toBe('delivered');
  });

  it('refuses epochs beyond the current one, repeated epochs, non-members and oversized wraps', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await pendingMember(t, owner, orbit);
    const stranger = await registerUser(t);
    await expectError(await deliver(t, owner, orbit.id, member.id, [2]), 400, 'VALIDATION_ERROR');
    await expectError(await deliver(t, owner, orbit.id, member.id, [1, 1]), 400, 'VALIDATION_ERROR');
    await expectError(await deliver(t, owner, orbit.id, member.id, []), 400, 'VALIDATION_ERROR');
    await expectError(await deliver(t, owner, orbit.id, stranger.id), 404, 'NOT_FOUND');
    const big = post({ keys: [{ key_epoch: 1, encrypted_group_key: b64(4097) }] }, owner.auth, 'PUT');
    await expectError(await t.fetch(`/api/groups/${orbit.id}/members/${member.id}/keys`, big), 413, 'PAYLOAD_TOO_LARGE');
    expect((await getJson(t, `/api/groups/${orbit.id}`, member)).key_status).toBe('pending');
  });
});

describe('key_status', () => {
  it('moves pending → delivered, stays delivered for holders across a rotation, and stays pending for the others', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await pendingMember(t, owner, orbit);
    expect(await getJson(t, `/api/groups/${orbit.id}`, member)).toMatchObject({ key_epoch: 1, key_status: 'pending', encrypted_group_key: null });
    expect((await statusOf(owner, orbit.id))[member.id]).toEqual(['pending', null]);

    expect((await deliver(t, owner, orbit.id, member.id)).status).toBe(204);
    expect(await getJson(t, `/api/groups/${orbit.id}`, member)).toMatchObject({ key_status: 'delivered', encrypted_group_key: expect.any(String) });
    expect((await statusOf(owner, orbit.id))[member.id]).toEqual(['delivered', owner.id]);

    const late = await pendingMember(t, owner, orbit);
    expect((await rotate(t, owner, orbit.id, 2, [owner.id, member.id])).status).toBe(201);
    expect(await statusOf(late, orbit.id)).toEqual({
      [owner.id]: ['delivered', owner.id],
      [member.id]: ['delivered', owner.id],
      [late.id]: ['pending', null],
    });
    // A key for the old epoch is not the current one.
    expect((await deliver(t, member, orbit.id, late.id, [1])).status).toBe(204);
    expect((await statusOf(late, orbit.id))[late.id]).toEqual(['pending', null]);
    await expectError(await t.fetch(`/api/groups/${orbit.id}/invites`, post({}, late.auth)), 403, 'FORBIDDEN');
    await expectError(await deliver(t, late, orbit.id, owner.id, [2]), 403, 'KEY_PENDING');
    expect((await deliver(t, member, orbit.id, late.id, [2])).status).toBe(204);
    expect((await statusOf(late, orbit.id))[late.id]).toEqual(['delivered', member.id]);
    expect(await getJson(t, `/api/groups/${orbit.id}`, late)).toMatchObject({ key_epoch: 2, key_status: 'delivered' });
  });
});

describe('GET /api/groups/:groupId/keys', () => {
  it("returns only the caller's own wraps, every epoch, oldest first, in pages", async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const wraps: Record<number, string> = {};
    for (const epoch of [2, 3]) {
      wraps[epoch] = b64(200);
      const res = await t.fetch(
        `/api/groups/${orbit.id}/keys`,
        post({ key_epoch: epoch, keys: [{ user_id: owner.id, encrypted_group_key: b64(200) }, { user_id: member.id, encrypted_group_key: wraps[epoch] }] }, owner.auth),
      );
      expect(res.status).toBe(201);
    }
    const all = await ownKeys(member, orbit.id);
    expect(all.next_cursor).toBeNull();
    expect(all.items.map((k: any) => [k.key_epoch, k.delivered_by])).toEqual([
      [1, owner.id],
      [2, owner.id],
      [3, owner.id],
    ]);
    expect(all.items[1].encrypted_group_key).toBe(wraps[2]);
    expect(all.items[2].encrypted_group_key).toBe(wraps[3]);

    const first = await ownKeys(member, orbit.id, '?limit=2');
    expect(first.items.map((k: any) => k.key_epoch)).toEqual([1, 2]);
    const second = await ownKeys(member, orbit.id, `?limit=2&cursor=${first.next_cursor}`);
    expect(second).toMatchObject({ items: [{ key_epoch: 3 }], next_cursor: null });
    for (const bad of ['["x"]', '[3000000000]', '[-1]']) {
      const cursor = Buffer.from(bad).toString('base64url');
      await expectError(await t.fetch(`/api/groups/${orbit.id}/keys?cursor=${cursor}`, { headers: member.auth }), 400, 'VALIDATION_ERROR');
    }
    expect((await ownKeys(await pendingMember(t, owner, orbit), orbit.id)).items).toEqual([]);
  });
});

describe('POST /api/groups/:groupId/keys (rotation)', () => {
  it('moves the orbit to the next epoch for exactly the key holders and emits key_rotated', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    await pendingMember(t, owner, orbit);
    const seq = (await getJson(t, `/api/groups/${orbit.id}`, owner)).last_seq;
    const ownerWrap = b64(256);
    const res = await t.fetch(
      `/api/groups/${orbit.id}/keys`,
      post({ key_epoch: 2, key_check: 'Y2hlY2s=', keys: [{ user_id: member.id, encrypted_group_key: b64(256) }, { user_id: owner.id, encrypted_group_key: ownerWrap }] }, owner.auth),
    );
    expect(res.status).toBe(201);
    expect(await json(res)).toMatchObject({ id: orbit.id, key_epoch: 2, key_status: 'delivered', encrypted_group_key: ownerWrap, key_check: 'Y2hlY2s=', last_seq: seq + 1 });
    expect(await newEvents(t, orbit.id, seq)).toEqual([
      { seq: seq + 1, type: 'key_rotated', actor_id: owner.id, data: { key_epoch: 2, previous_key_epoch: 1, key_check: 'Y2hlY2s=', user_ids: [owner.id, member.id].sort() } },
    ]);

    // Without a new key_check the old one (for the old key) is dropped.
    expect((await rotate(t, owner, orbit.id, 3, [owner.id, member.id])).status).toBe(201);
    expect(await getJson(t, `/api/groups/${orbit.id}`, member)).toMatchObject({ key_epoch: 3, key_check: null, key_status: 'delivered' });
  });

  it('answers 409 with expected_user_ids when the set of members is wrong, and changes nothing', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const pending = await pendingMember(t, owner, orbit);
    const stranger = await registerUser(t);
    const expected = [owner.id, member.id].sort();
    const seq = (await getJson(t, `/api/groups/${orbit.id}`, owner)).last_seq;
    for (const set of [[owner.id], [owner.id, member.id, pending.id], [owner.id, stranger.id], [member.id, pending.id]]) {
      const err = await expectError(await rotate(t, owner, orbit.id, 2, set), 409, 'CONFLICT');
      expect(err.details).toEqual({ expected_user_ids: expected, current_key_epoch: 1 });
    }
    expect(await getJson(t, `/api/groups/${orbit.id}`, owner)).toMatchObject({ key_epoch: 1, last_seq: seq });
    expect(await t.sql('select 1 from member_keys where group_id = $1 and key_epoch = 2', [orbit.id])).toEqual([]);
  });

  it('answers 409 for any epoch but the next, 400 for repeated members, 403 for members', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    for (const epoch of [1, 3]) {
      expect((await expectError(await rotate(t, owner, orbit.id, epoch, [owner.id, member.id]), 409, 'CONFLICT')).details).toEqual({ current_key_epoch: 1 });
    }
    await expectError(await rotate(t, owner, orbit.id, 0, [owner.id, member.id]), 400, 'VALIDATION_ERROR');
    await expectError(await rotate(t, owner, orbit.id, 2, [owner.id, member.id, member.id]), 400, 'VALIDATION_ERROR');
    await expectError(await rotate(t, owner, orbit.id, 2, []), 400, 'VALIDATION_ERROR');
    await expectError(await rotate(t, member, orbit.id, 2, [owner.id, member.id]), 403, 'FORBIDDEN');
    await expectError(await rotate(t, owner, orbit.id, 2, [owner.id, member.id], { key_check: b64(65) }), 413, 'PAYLOAD_TOO_LARGE');
    expect((await getJson(t, `/api/groups/${orbit.id}`, owner)).key_epoch).toBe(1);
  });

  it('lets exactly one of two concurrent rotations to the same epoch through', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const results = await Promise.all([0, 1, 2].map(() => rotate(t, owner, orbit.id, 2, [owner.id, member.id])));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    const rows = await t.sql<{ user_id: string }>('select user_id from member_keys where group_id = $1 and key_epoch = 2', [orbit.id]);
    expect(rows).toHaveLength(2);
  });
});
