// Orbits: rename, ownership transfer, the owned-orbit cap, the quota view, and who may do what.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, b64, createOrbit, expectError, json, post, registerUser, type TestUser } from '../support/api';
import { createInviteFull, deliver, eventLog, getJson, join, leave, newEvents, pendingMember, rotate } from '../support/orbits';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const rename = (user: TestUser, groupId: string, name = b64(40)) => t.fetch(`/api/groups/${groupId}`, post({ encrypted_name: name }, user.auth, 'PATCH'));
const transfer = (user: TestUser, groupId: string, userId: string) => t.fetch(`/api/groups/${groupId}/owner`, post({ user_id: userId }, user.auth, 'PUT'));

/** Every orbit route, with a body its validation accepts, so only authorization can refuse it. */
function orbitRoutes(groupId: string, ids: { owner: string; self: string; inviteId: string; inviteCode: string }) {
  const key = { key_epoch: 1, encrypted_group_key: b64(64) };
  return [
    ['GET', `/api/groups/${groupId}`],
    ['PATCH', `/api/groups/${groupId}`, { encrypted_name: b64(16) }],
    ['PUT', `/api/groups/${groupId}/owner`, { user_id: ids.self }],
    ['GET', `/api/groups/${groupId}/members`],
    ['DELETE', `/api/groups/${groupId}/members/${ids.owner}`],
    ['DELETE', `/api/groups/${groupId}/members/${ids.self}`],
    ['PUT', `/api/groups/${groupId}/members/${ids.owner}/keys`, { keys: [key] }],
    ['PUT', `/api/groups/${groupId}/members/${ids.self}/keys`, { keys: [key] }],
    ['GET', `/api/groups/${groupId}/keys`],
    ['POST', `/api/groups/${groupId}/keys`, { key_epoch: 2, keys: [{ user_id: ids.owner, encrypted_group_key: b64(64) }] }],
    ['POST', `/api/groups/${groupId}/invites`, {}],
    ['GET', `/api/groups/${groupId}/invites`],
    ['DELETE', `/api/groups/${groupId}/invites/${ids.inviteCode}`],
    ['DELETE', `/api/groups/${groupId}/invites/${ids.inviteId}`],
    ['GET', `/api/groups/${groupId}/quota`],
  ] as Array<[string, string, unknown?]>;
}

const call = (user: TestUser, [method, path, body]: [string, string, unknown?]) =>
  t.fetch(path, body === undefined ? { method, headers: user.auth } : post(body, user.auth, method));

describe('who may touch an orbit', () => {
  it('answers 404 to non-members on every orbit route, exactly as for an orbit that does not exist, and changes nothing', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const invite = await createInviteFull(t, owner, orbit.id);
    const stranger = await registerUser(t);
    // A former member is a stranger too.
    const former = await addMember(t, owner, orbit);
    expect((await leave(t, former, orbit.id)).status).toBe(204);
    const before = await eventLog(t, orbit.id);

    for (const user of [stranger, former]) {
      const routes = orbitRoutes(orbit.id, { owner: owner.id, self: user.id, inviteId: invite.id, inviteCode: invite.code });
      const missing = orbitRoutes(crypto.randomUUID(), { owner: owner.id, self: user.id, inviteId: invite.id, inviteCode: invite.code });
      for (let i = 0; i < routes.length; i++) {
        const [method, path] = routes[i]!;
        const real = await expectError(await call(user, routes[i]!), 404, 'NOT_FOUND');
        const none = await expectError(await call(user, missing[i]!), 404, 'NOT_FOUND');
        expect(real.message, `${method} ${path}`).toBe(none.message);
        expect(real.details, `${method} ${path}`).toEqual(none.details);
      }
    }

    expect(await eventLog(t, orbit.id)).toEqual(before);
    const members = await getJson(t, `/api/groups/${orbit.id}/members`, owner);
    expect(members.items.map((m: any) => m.user_id).sort()).toEqual([owner.id, member.id].sort());
    // The invite was neither revoked nor used.
    const invites = await getJson(t, `/api/groups/${orbit.id}/invites`, owner);
    expect(invites.items.map((i: any) => i.id)).toContain(invite.id);
  });

  it('answers 403 FORBIDDEN to members (with or without a key) on owner-only routes', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const other = await addMember(t, owner, orbit);
    const pending = await pendingMember(t, owner, orbit);
    const invite = await createInviteFull(t, owner, orbit.id);
    const before = await eventLog(t, orbit.id);
    for (const user of [member, pending]) {
      const ownerOnly: Array<[string, string, unknown?]> = [
        ['PATCH', `/api/groups/${orbit.id}`, { encrypted_name: b64(16) }],
        ['PUT', `/api/groups/${orbit.id}/owner`, { user_id: user.id }],
        ['POST', `/api/groups/${orbit.id}/keys`, { key_epoch: 2, keys: [owner.id, member.id, other.id].map((user_id) => ({ user_id, encrypted_group_key: b64(64) })) }],
        ['DELETE', `/api/groups/${orbit.id}/members/${other.id}`],
        ['DELETE', `/api/groups/${orbit.id}/members/${owner.id}`],
        ['POST', `/api/groups/${orbit.id}/invites`, {}],
        ['GET', `/api/groups/${orbit.id}/invites`],
        ['DELETE', `/api/groups/${orbit.id}/invites/${invite.code}`],
        ['DELETE', `/api/groups/${orbit.id}/invites/${invite.id}`],
      ];
      for (const route of ownerOnly) await expectError(await call(user, route), 403, 'FORBIDDEN');
    }
    expect(await eventLog(t, orbit.id)).toEqual(before);
    expect((await join(t, await registerUser(t), invite.code)).status).toBe(200);
  });

  it('lets a pending member read, deliver its own key and leave, and answers KEY_PENDING to its other writes', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const pending = await pendingMember(t, owner, orbit);
    const later = await pendingMember(t, owner, orbit);

    for (const path of ['', '/members', '/keys', '/quota']) await getJson(t, `/api/groups/${orbit.id}${path}`, pending);
    // Delivering someone else's key needs a key to wrap.
    await expectError(await deliver(t, pending, orbit.id, later.id), 403, 'KEY_PENDING');
    // Its own key (e.g. from the invite link's fragment) it may deliver.
    expect((await deliver(t, later, orbit.id, later.id)).status).toBe(204);
    expect((await getJson(t, `/api/groups/${orbit.id}`, later)).key_status).toBe('delivered');
    expect((await leave(t, pending, orbit.id)).status).toBe(204);
    const members = await getJson(t, `/api/groups/${orbit.id}/members`, member);
    expect(members.items.map((m: any) => m.user_id).sort()).toEqual([owner.id, member.id, later.id].sort());
  });

  it('answers KEY_PENDING to an owner without the current key on owner-only writes, but lets it read its invites', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const invite = await createInviteFull(t, owner, orbit.id);
    // As after the owner replaced its public key without a backup.
    await t.sql('delete from member_keys where group_id = $1 and user_id = $2', [orbit.id, owner.id]);
    await expectError(await rename(owner, orbit.id), 403, 'KEY_PENDING');
    await expectError(await transfer(owner, orbit.id, member.id), 403, 'KEY_PENDING');
    await expectError(await rotate(t, owner, orbit.id, 2, [member.id]), 403, 'KEY_PENDING');
    await expectError(await t.fetch(`/api/groups/${orbit.id}/invites`, post({}, owner.auth)), 403, 'KEY_PENDING');
    await expectError(await t.fetch(`/api/groups/${orbit.id}/invites/${invite.id}`, { method: 'DELETE', headers: owner.auth }), 403, 'KEY_PENDING');
    await expectError(await leave(t, owner, orbit.id, member.id), 403, 'KEY_PENDING');
    expect((await getJson(t, `/api/groups/${orbit.id}/invites`, owner)).items.map((i: any) => i.id)).toContain(invite.id);
    // A member holding the key delivers it again; the owner is whole.
    expect((await deliver(t, member, orbit.id, owner.id)).status).toBe(204);
    expect((await rename(owner, orbit.id)).status).toBe(200);
  });
});

describe('PATCH /api/groups/:groupId', () => {
  it('renames the orbit for everyone and emits group_updated with the new name', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const name = b64(200);
    const res = await rename(owner, orbit.id, name);
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ id: orbit.id, encrypted_name: name, role: 'owner', last_seq: 3, key_check: orbit.group.key_check });
    expect((await getJson(t, `/api/groups/${orbit.id}`, member)).encrypted_name).toBe(name);
    expect(await newEvents(t, orbit.id, 2)).toEqual([
      { seq: 3, type: 'group_updated', actor_id: owner.id, data: { id: orbit.id, encrypted_name: name, reason: 'renamed' } },
    ]);
  });

  it('caps encrypted_name at 1 KiB decoded (413) and refuses non-base64 (400)', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    expect((await rename(owner, orbit.id, b64(1024))).status).toBe(200);
    await expectError(await rename(owner, orbit.id, b64(1025)), 413, 'PAYLOAD_TOO_LARGE');
    await expectError(await rename(owner, orbit.id, 'not base64!'), 400, 'VALIDATION_ERROR');
    await expectError(await t.fetch(`/api/groups/${orbit.id}`, post({}, owner.auth, 'PATCH')), 400, 'VALIDATION_ERROR');
  });
});

describe('PUT /api/groups/:groupId/owner', () => {
  it('hands the orbit to a member holding the key; the old owner becomes a member', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const heir = await addMember(t, owner, orbit);
    const seq = (await getJson(t, `/api/groups/${orbit.id}`, owner)).last_seq;

    expect((await transfer(owner, orbit.id, heir.id)).status).toBe(204);
    const members = await getJson(t, `/api/groups/${orbit.id}/members`, heir);
    expect(Object.fromEntries(members.items.map((m: any) => [m.user_id, m.role]))).toEqual({ [owner.id]: 'member', [heir.id]: 'owner' });
    expect(await getJson(t, `/api/groups/${orbit.id}`, owner)).toMatchObject({ role: 'member', owner_id: heir.id });
    expect(await newEvents(t, orbit.id, seq)).toEqual([
      {
        seq: seq + 1,
        type: 'group_updated',
        actor_id: owner.id,
        data: { id: orbit.id, owner_id: heir.id, previous_owner_id: owner.id, reason: 'ownership_transferred' },
      },
    ]);

    // The roles really moved: the old owner is refused, the new one may act.
    await expectError(await rename(owner, orbit.id), 403, 'FORBIDDEN');
    await expectError(await transfer(owner, orbit.id, owner.id), 403, 'FORBIDDEN');
    expect((await rename(heir, orbit.id)).status).toBe(200);
    expect((await transfer(heir, orbit.id, owner.id)).status).toBe(204);
    expect((await getJson(t, `/api/groups/${orbit.id}`, owner)).role).toBe('owner');
  });

  it('refuses a pending member (409), a non-member (404) and bad ids (400); naming oneself changes nothing', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const pending = await pendingMember(t, owner, orbit);
    const stranger = await registerUser(t);
    const seq = (await getJson(t, `/api/groups/${orbit.id}`, owner)).last_seq;
    const conflict = await expectError(await transfer(owner, orbit.id, pending.id), 409, 'CONFLICT');
    expect(conflict.details).toEqual({ key_epoch: 1 });
    await expectError(await transfer(owner, orbit.id, stranger.id), 404, 'NOT_FOUND');
    await expectError(await transfer(owner, orbit.id, 'nope'), 400, 'VALIDATION_ERROR');
    expect((await transfer(owner, orbit.id, owner.id)).status).toBe(204);
    expect(await newEvents(t, orbit.id, seq)).toEqual([]);
    expect((await getJson(t, `/api/groups/${orbit.id}`, owner)).owner_id).toBe(owner.id);
  });
});

describe('MAX_OWNED_GROUPS', () => {
  let capped: Target;
  beforeAll(async () => {
    capped = await createTarget({ env: { MAX_OWNED_GROUPS: '2' } });
  });
  afterAll(() => capped?.close());

  const create = (user: TestUser) => capped.fetch('/api/groups', post({ encrypted_name: b64(16), encrypted_group_key: b64(64) }, user.auth));

  it('lets a user own at most MAX_OWNED_GROUPS orbits, also under concurrent creation', async () => {
    const user = await registerUser(capped);
    const results = await Promise.all(Array.from({ length: 6 }, () => create(user)));
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, 409, 409, 409, 409]);
    const refused = await expectError(results.find((r) => r.status === 409)!, 409, 'CONFLICT');
    expect(refused.details).toEqual({ max_owned_groups: 2 });
    const owned = await json(await capped.fetch('/api/groups', { headers: user.auth }));
    expect(owned.items).toHaveLength(2);

    // Leaving one (the last member deletes it) makes room again.
    expect((await capped.fetch(`/api/groups/${owned.items[0].id}/members/${user.id}`, { method: 'DELETE', headers: user.auth })).status).toBe(204);
    expect((await create(user)).status).toBe(201);
    await expectError(await create(user), 409, 'CONFLICT');
  });

  it('refuses to hand an orbit to a member who already owns the most allowed', async () => {
    const owner = await registerUser(capped);
    const orbit = await createOrbit(capped, owner);
    const busy = await addMember(capped, owner, orbit);
    for (let i = 0; i < 2; i++) await createOrbit(capped, busy);
    const refused = await capped.fetch(`/api/groups/${orbit.id}/owner`, post({ user_id: busy.id }, owner.auth, 'PUT'));
    expect((await expectError(refused, 409, 'CONFLICT')).details).toEqual({ max_owned_groups: 2 });
    expect((await json(await capped.fetch(`/api/groups/${orbit.id}`, { headers: owner.auth }))).owner_id).toBe(owner.id);
  });
});

describe('GET /api/groups/:groupId/quota', () => {
  it('shows the default limits to every member, pending ones too, and warns at 80 % of either limit', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const pending = await pendingMember(t, owner, orbit);
    const empty = { bytes_used: 0, bytes_reserved: 0, bytes_limit: 10_737_418_240, files_used: 0, files_reserved: 0, files_limit: 100, warning: false };
    expect(await getJson(t, `/api/groups/${orbit.id}/quota`, owner)).toEqual(empty);
    expect(await getJson(t, `/api/groups/${orbit.id}/quota`, pending)).toEqual(empty);

    await t.sql('update group_quotas set files_used = 79 where group_id = $1', [orbit.id]);
    expect((await getJson(t, `/api/groups/${orbit.id}/quota`, owner)).warning).toBe(false);
    await t.sql('update group_quotas set files_reserved = 1 where group_id = $1', [orbit.id]);
    expect(await getJson(t, `/api/groups/${orbit.id}/quota`, owner)).toMatchObject({ files_used: 79, files_reserved: 1, warning: true });
    await t.sql('update group_quotas set files_used = 0, files_reserved = 0, bytes_used = 8589934592 where group_id = $1', [orbit.id]);
    expect(await getJson(t, `/api/groups/${orbit.id}/quota`, owner)).toMatchObject({ bytes_used: 8_589_934_592, warning: true });
  });
});

describe('the orbit event log', () => {
  it('gives every change of a member, key and owner the next seq, with the right type, actor and data', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const a = await registerUser(t);
    const b = await registerUser(t);
    const invite = await createInviteFull(t, owner, orbit.id, { max_uses: 2 });
    expect((await join(t, a, invite.code)).status).toBe(200);
    expect((await deliver(t, owner, orbit.id, a.id)).status).toBe(204);
    expect((await join(t, b, invite.code)).status).toBe(200);
    expect((await rotate(t, owner, orbit.id, 2, [owner.id, a.id], { key_check: 'AAAA' })).status).toBe(201);
    expect((await deliver(t, a, orbit.id, b.id, [1, 2])).status).toBe(204);
    expect((await rename(owner, orbit.id, 'bmFtZQ==')).status).toBe(200);
    expect((await transfer(owner, orbit.id, a.id)).status).toBe(204);
    expect((await leave(t, a, orbit.id, owner.id)).status).toBe(204);
    expect((await leave(t, a, orbit.id)).status).toBe(204);

    const log = await eventLog(t, orbit.id);
    expect(log.map((e) => [e.seq, e.type, e.actor_id])).toEqual([
      [1, 'member_joined', a.id],
      [2, 'member_key_delivered', owner.id],
      [3, 'member_joined', b.id],
      [4, 'key_rotated', owner.id],
      [5, 'member_key_delivered', a.id],
      [6, 'group_updated', owner.id],
      [7, 'group_updated', owner.id],
      [8, 'member_left', a.id],
      [9, 'member_left', a.id],
      [10, 'group_updated', a.id],
    ]);
    expect(log[0]!.data).toMatchObject({ user_id: a.id, username: a.username, public_key: a.publicKey, key_version: 1, role: 'member', key_status: 'pending' });
    expect(log[1]!.data).toEqual({ user_id: a.id, key_epochs: [1] });
    expect(log[3]!.data).toEqual({ key_epoch: 2, previous_key_epoch: 1, key_check: 'AAAA', user_ids: [owner.id, a.id].sort() });
    expect(log[4]!.data).toEqual({ user_id: b.id, key_epochs: [1, 2] });
    expect(log[5]!.data).toEqual({ id: orbit.id, encrypted_name: 'bmFtZQ==', reason: 'renamed' });
    expect(log[6]!.data).toEqual({ id: orbit.id, owner_id: a.id, previous_owner_id: owner.id, reason: 'ownership_transferred' });
    expect(log[7]!.data).toEqual({ user_id: owner.id, reason: 'removed' });
    expect(log[8]!.data).toEqual({ user_id: a.id, reason: 'left' });
    expect(log[9]!.data).toEqual({ id: orbit.id, owner_id: b.id, previous_owner_id: a.id, reason: 'owner_left' });
    expect(await getJson(t, `/api/groups/${orbit.id}`, b)).toMatchObject({ last_seq: 10, role: 'owner', member_count: 1 });
  });
});
