// Members: the list and its paging, leaving, removal, ownership hand-off, and the last member out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, createOrbit, expectError, json, registerUser, type TestUser } from '../support/api';
import { createInviteFull, eventLog, getJson, join, leave, newEvents, pendingMember } from '../support/orbits';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const members = async (user: TestUser, groupId: string, query = '') => getJson(t, `/api/groups/${groupId}/members${query}`, user);
const roles = async (user: TestUser, groupId: string) =>
  Object.fromEntries((await members(user, groupId)).items.map((m: any) => [m.user_id, m.role]));

describe('GET /api/groups/:groupId/members', () => {
  it('lists members with public keys, roles and current-epoch key status', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const pending = await pendingMember(t, owner, orbit);
    const page = await members(pending, orbit.id);
    expect(page.next_cursor).toBeNull();
    expect(page.items).toEqual([
      { user_id: owner.id, username: owner.username, public_key: owner.publicKey, key_version: 1, role: 'owner', key_status: 'delivered', key_delivered_by: owner.id, joined_at: expect.any(String) },
      { user_id: member.id, username: member.username, public_key: member.publicKey, key_version: 1, role: 'member', key_status: 'delivered', key_delivered_by: owner.id, joined_at: expect.any(String) },
      { user_id: pending.id, username: pending.username, public_key: pending.publicKey, key_version: 1, role: 'member', key_status: 'pending', key_delivered_by: null, joined_at: expect.any(String) },
    ]);
    for (const m of page.items) expect(new Date(m.joined_at).toISOString()).toBe(m.joined_at);
  });

  it('pages in join order by cursor without repeating or skipping, even for equal and sub-millisecond join times', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const joined: TestUser[] = [];
    for (let i = 0; i < 5; i++) joined.push(await addMember(t, owner, orbit));
    // Two members joined in the same microsecond, two others a microsecond apart within one millisecond.
    await t.sql(`update group_members set joined_at = '2031-01-01T00:00:00.123456Z' where group_id = $1 and user_id = any($2::uuid[])`, [orbit.id, [joined[0]!.id, joined[1]!.id]]);
    await t.sql(`update group_members set joined_at = '2031-01-01T00:00:00.123457Z' where group_id = $1 and user_id = $2`, [orbit.id, joined[2]!.id]);
    await t.sql(`update group_members set joined_at = '2031-01-01T00:00:00.123458Z' where group_id = $1 and user_id = $2`, [orbit.id, joined[3]!.id]);
    const expected = [owner.id, ...[joined[0]!.id, joined[1]!.id].sort(), joined[2]!.id, joined[3]!.id, joined[4]!.id];
    // Joined last, after the moved ones.
    await t.sql(`update group_members set joined_at = '2031-01-02T00:00:00Z' where group_id = $1 and user_id = $2`, [orbit.id, joined[4]!.id]);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: any = await members(owner, orbit.id, `?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((m: any) => m.user_id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual(expected);
    expect(pages).toBe(3);
  });

  it('answers 400 to a bad cursor or limit', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await expectError(await t.fetch(`/api/groups/${orbit.id}/members?cursor=garbage`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
    for (const bad of [['0000-01-01T00:00:00Z', owner.id], ['2026-02-30T00:00:00Z', owner.id], ['2026-01-01T00:00:00Z', 'x']]) {
      const cursor = Buffer.from(JSON.stringify(bad)).toString('base64url');
      await expectError(await t.fetch(`/api/groups/${orbit.id}/members?cursor=${cursor}`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
    }
    await expectError(await t.fetch(`/api/groups/${orbit.id}/members?limit=101`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
    await expectError(await t.fetch(`/api/groups/${orbit.id}/members?limit=0`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
  });
});

describe('DELETE /api/groups/:groupId/members/:userId', () => {
  it('lets a member leave and the owner remove others; members cannot remove anyone else', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const a = await addMember(t, owner, orbit);
    const b = await addMember(t, owner, orbit);
    const c = await addMember(t, owner, orbit);
    const seq = (await getJson(t, `/api/groups/${orbit.id}`, owner)).last_seq;

    await expectError(await leave(t, a, orbit.id, b.id), 403, 'FORBIDDEN');
    expect((await leave(t, a, orbit.id)).status).toBe(204);
    expect((await leave(t, owner, orbit.id, b.id)).status).toBe(204);
    await expectError(await leave(t, owner, orbit.id, b.id), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/groups/${orbit.id}`, { headers: b.auth }), 404, 'NOT_FOUND');
    expect((await json(await t.fetch('/api/groups', { headers: a.auth }))).items).toEqual([]);

    expect(await roles(c, orbit.id)).toEqual({ [owner.id]: 'owner', [c.id]: 'member' });
    expect((await getJson(t, `/api/groups/${orbit.id}`, c)).member_count).toBe(2);
    expect(await newEvents(t, orbit.id, seq)).toEqual([
      { seq: seq + 1, type: 'member_left', actor_id: a.id, data: { user_id: a.id, reason: 'left' } },
      { seq: seq + 2, type: 'member_left', actor_id: owner.id, data: { user_id: b.id, reason: 'removed' } },
    ]);
    // Their wrapped keys went with them.
    expect(await t.sql('select 1 from member_keys where group_id = $1 and user_id = any($2::uuid[])', [orbit.id, [a.id, b.id]])).toEqual([]);
  });

  it('keeps a removed member out with invites created before the removal, but not with a new one', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const old = await createInviteFull(t, owner, orbit.id, { max_uses: 5 });
    const removed = await registerUser(t);
    const leaver = await registerUser(t);
    expect((await join(t, removed, old.code)).status).toBe(200);
    expect((await join(t, leaver, old.code)).status).toBe(200);
    expect((await leave(t, owner, orbit.id, removed.id)).status).toBe(204);
    expect((await leave(t, leaver, orbit.id)).status).toBe(204);

    await expectError(await join(t, removed, old.code), 404, 'NOT_FOUND');
    await expectError(await join(t, removed, orbit.inviteCode), 404, 'NOT_FOUND');
    // Leaving of one's own accord bars nothing.
    expect((await join(t, leaver, old.code)).status).toBe(200);
    const fresh = await createInviteFull(t, owner, orbit.id);
    const back = await join(t, removed, fresh.code);
    expect(back.status).toBe(200);
    expect(await json(back)).toMatchObject({ key_status: 'pending', group: { id: orbit.id, role: 'member', key_status: 'pending' } });
    // The refused attempt did not use the old invite up.
    const listed = (await getJson(t, `/api/groups/${orbit.id}/invites`, owner)).items.find((i: any) => i.id === old.id);
    expect(listed.uses).toBe(3);
  });

  it('hands ownership to the longest-standing member holding the key, else to the longest-standing member', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const early = await pendingMember(t, owner, orbit);
    const keyed = await addMember(t, owner, orbit);
    const keyedLater = await addMember(t, owner, orbit);
    expect((await leave(t, owner, orbit.id)).status).toBe(204);
    expect(await roles(early, orbit.id)).toEqual({ [early.id]: 'member', [keyed.id]: 'owner', [keyedLater.id]: 'member' });
    const log = await eventLog(t, orbit.id);
    expect(log.slice(-2).map((e) => [e.type, e.data])).toEqual([
      ['member_left', { user_id: owner.id, reason: 'left' }],
      ['group_updated', { id: orbit.id, owner_id: keyed.id, previous_owner_id: owner.id, reason: 'owner_left' }],
    ]);

    // Nobody else holds the key: the longest-standing member takes over.
    const owner2 = await registerUser(t);
    const orbit2 = await createOrbit(t, owner2);
    const first = await pendingMember(t, owner2, orbit2);
    const second = await pendingMember(t, owner2, orbit2);
    expect((await leave(t, owner2, orbit2.id)).status).toBe(204);
    expect(await roles(second, orbit2.id)).toEqual({ [first.id]: 'owner', [second.id]: 'member' });
    expect((await getJson(t, `/api/groups/${orbit2.id}`, first)).owner_id).toBe(first.id);
  });

  it('leaves exactly one owner when the owner and its heir leave at once', async () => {
    for (let round = 0; round < 3; round++) {
      const owner = await registerUser(t);
      const orbit = await createOrbit(t, owner);
      const heir = await addMember(t, owner, orbit);
      const third = await addMember(t, owner, orbit);
      const fourth = await addMember(t, owner, orbit);
      const results = await Promise.all([leave(t, owner, orbit.id), leave(t, heir, orbit.id)]);
      expect(results.map((r) => r.status)).toEqual([204, 204]);
      expect(await roles(third, orbit.id)).toEqual({ [third.id]: 'owner', [fourth.id]: 'member' });
      const [row] = await t.sql<{ owner_id: string; member_count: number }>('select owner_id, member_count from groups where id = $1', [orbit.id]);
      expect(row).toEqual({ owner_id: third.id, member_count: 2 });
    }
  });

  it('deletes the orbit with its rows when the last member leaves, and queues its blobs for deletion', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const blobs = [`${orbit.id}/${crypto.randomUUID()}`, `${orbit.id}/${crypto.randomUUID()}`];
    for (const [i, status] of (['complete', 'uploading'] as const).entries()) {
      await t.sql(
        `insert into media (group_id, author_id, key_epoch, encrypted_metadata, encryption_iv, size_bytes, chunk_count, status, blob_key, upload_expires_at)
         values ($1, $2, 1, '\\x00', 'iv', 1000, 1, $3, $4, now() + interval '1 day')`,
        [orbit.id, owner.id, status, blobs[i]],
      );
    }
    expect((await leave(t, member, orbit.id)).status).toBe(204);
    // The owner's open upload stays; the member had none.
    expect(await t.sql('select blob_key from blob_deletions where blob_key = any($1)', [blobs])).toEqual([]);
    expect((await leave(t, owner, orbit.id)).status).toBe(204);

    await expectError(await t.fetch(`/api/groups/${orbit.id}`, { headers: owner.auth }), 404, 'NOT_FOUND');
    const queued = await t.sql<{ blob_key: string }>('select blob_key from blob_deletions where blob_key = any($1) order by blob_key', [blobs]);
    expect(queued.map((r) => r.blob_key)).toEqual([...blobs].sort());
    for (const table of ['groups where id', 'group_members where group_id', 'member_keys where group_id', 'invites where group_id', 'media where group_id', 'orbit_events where group_id', 'group_quotas where group_id']) {
      expect(await t.sql(`select 1 from ${table} = $1`, [orbit.id]), table).toEqual([]);
    }
    // The owner's slot is free again.
    expect((await json(await t.fetch('/api/groups', { headers: owner.auth }))).items).toEqual([]);
  });

  it('lets a pending member leave; the last pending member out deletes the orbit too', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const pending = await pendingMember(t, owner, orbit);
    expect((await leave(t, owner, orbit.id)).status).toBe(204);
    expect((await getJson(t, `/api/groups/${orbit.id}`, pending)).role).toBe('owner');
    expect((await leave(t, pending, orbit.id)).status).toBe(204);
    expect(await t.sql('select 1 from groups where id = $1', [orbit.id])).toEqual([]);
  });

  it('answers 400 for ids that are not UUIDs', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await expectError(await leave(t, owner, orbit.id, 'me'), 400, 'VALIDATION_ERROR');
    await expectError(await leave(t, owner, 'abc', owner.id), 400, 'VALIDATION_ERROR');
  });
});
