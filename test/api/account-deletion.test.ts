// DELETE /api/users/me: memberships end as if the user left, authored content stays anonymous,
// the username is retired, every session ends.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, createInvite, createOrbit, expectError, joinOrbit, json, post, registerUser, type TestUser } from '../support/api';
import { allEvents, newReply, newThread } from '../support/content';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const deleteAccount = (user: TestUser, password: unknown) => t.fetch('/api/users/me', post({ password }, user.auth, 'DELETE'));

/** A thread row written straight into the database (the thread routes are another folder's). */
async function insertThread(groupId: string, authorId: string): Promise<string> {
  const [row] = await t.sql<{ id: string }>(
    `insert into threads (group_id, author_id, key_epoch, encrypted_title, encrypted_body, last_activity_seq, seq)
     values ($1, $2, 1, decode('dGl0bGU=', 'base64'), decode('Ym9keQ==', 'base64'), 1000, 1000) returning id`,
    [groupId, authorId],
  );
  return row!.id;
}

/** A media row with its quota accounted, as an upload start or completion would leave it. */
async function insertMedia(groupId: string, authorId: string, status: 'uploading' | 'complete', size: number): Promise<string> {
  const [row] = await t.sql<{ id: string }>(
    `insert into media (group_id, author_id, key_epoch, encrypted_metadata, encryption_iv, size_bytes, chunk_count, status, blob_key, upload_expires_at)
     values ($1, $2, 1, decode('bWV0YQ==', 'base64'), 'aXY=', $3, 1, $4, $5, now() + interval '1 day') returning id`,
    [groupId, authorId, size, status, `test/${crypto.randomUUID()}`],
  );
  const column = status === 'uploading' ? 'reserved' : 'used';
  await t.sql(`update group_quotas set bytes_${column} = bytes_${column} + $2, files_${column} = files_${column} + 1 where group_id = $1`, [groupId, size]);
  return row!.id;
}

describe('DELETE /api/users/me', () => {
  it('ends memberships, keeps content anonymous, retires the name and ends every session', async () => {
    const user = await registerUser(t);
    const phoneRes = await t.fetch('/api/auth/login', post({ username: user.username, password: user.password }));
    const phone = await json(phoneRes);

    // Orbit A: owned by the user, with a member holding the key → ownership passes to them.
    const a = await createOrbit(t, user);
    const heir = await addMember(t, user, a);
    // Orbit B: the user alone → it goes with them.
    const b = await createOrbit(t, user);
    // Orbit C: someone else's; the user wrote a thread, uploaded a file, and has an upload open.
    const owner = await registerUser(t);
    const c = await createOrbit(t, owner);
    await joinOrbit(t, user, await createInvite(t, owner, c.id));
    const thread = await insertThread(c.id, user.id);
    const done = await insertMedia(c.id, user.id, 'complete', 1000);
    const open = await insertMedia(c.id, user.id, 'uploading', 5000);

    expect((await t.fetch('/api/users/me', { headers: { authorization: `Bearer ${phone.access_token}` } })).status).toBe(200);
    const res = await deleteAccount(user, user.password);
    expect(res.status).toBe(204);

    // Every session is over: access tokens (this process at once), refresh tokens, the password.
    await expectError(await t.fetch('/api/users/me', { headers: user.auth }), 401, 'UNAUTHENTICATED');
    await expectError(await t.fetch('/api/users/me', { headers: { authorization: `Bearer ${phone.access_token}` } }), 401, 'UNAUTHENTICATED');
    await expectError(await t.fetch('/api/auth/refresh', post({ refresh_token: phone.refresh_token })), 401, 'UNAUTHENTICATED');
    await expectError(await t.fetch('/api/auth/login', post({ username: user.username, password: user.password })), 401, 'INVALID_CREDENTIALS');
    expect(await t.sql('select 1 from users where id = $1', [user.id])).toHaveLength(0);
    expect(await t.sql('select 1 from sessions where user_id = $1', [user.id])).toHaveLength(0);

    // A: the heir owns it now; everyone learns the user left because the account was deleted.
    const [heirView] = (await json(await t.fetch('/api/groups', { headers: heir.auth }))).items;
    expect(heirView).toMatchObject({ id: a.id, role: 'owner', owner_id: heir.id, member_count: 1 });
    const aEvents = await t.sql<{ type: string; data: any }>(`select type, data from orbit_events where group_id = $1 and seq > 2 order by seq`, [a.id]);
    expect(aEvents).toEqual([
      { type: 'member_left', data: { user_id: user.id, reason: 'deleted' } },
      { type: 'group_updated', data: expect.objectContaining({ owner_id: heir.id }) },
    ]);
    // B: gone with its last member.
    expect(await t.sql('select 1 from groups where id = $1', [b.id])).toHaveLength(0);
    // C: the thread and the finished file stay, anonymous; the open upload is aborted and its reservation released.
    const [threadRow] = await t.sql<{ author_id: string | null }>('select author_id from threads where id = $1', [thread]);
    expect(threadRow).toEqual({ author_id: null });
    const mediaRows = await t.sql<{ id: string; author_id: string | null }>('select id, author_id from media where id = any($1::uuid[])', [[done, open]]);
    expect(mediaRows).toEqual([{ id: done, author_id: null }]);
    const [quota] = await t.sql<Record<string, string>>('select bytes_used, files_used, bytes_reserved, files_reserved from group_quotas where group_id = $1', [c.id]);
    expect(Object.fromEntries(Object.entries(quota!).map(([k, v]) => [k, Number(v)]))).toEqual({ bytes_used: 1000, files_used: 1, bytes_reserved: 0, files_reserved: 0 });
    const [cView] = (await json(await t.fetch('/api/groups', { headers: owner.auth }))).items;
    expect(cView).toMatchObject({ id: c.id, member_count: 1 });
    const [left] = await t.sql<{ data: any }>(`select data from orbit_events where group_id = $1 and type = 'member_left'`, [c.id]);
    expect(left!.data).toEqual({ user_id: user.id, reason: 'deleted' });

    // The co-members no longer see a key for the user.
    await expectError(await t.fetch(`/api/users/${user.id}/public-key`, { headers: heir.auth }), 404, 'NOT_FOUND');
  });

  it('the username is never handed out again, in any case', async () => {
    const user = await registerUser(t);
    expect((await deleteAccount(user, user.password)).status).toBe(204);
    for (const username of [user.username, user.username.toUpperCase()]) {
      const res = await t.fetch('/api/auth/register', post({ username, password: 'another password', public_key: user.publicKey }));
      await expectError(res, 409, 'CONFLICT');
    }
  });

  it('a wrong password → 401 INVALID_CREDENTIALS and nothing happens; no password → 400', async () => {
    const user = await registerUser(t);
    const orbit = await createOrbit(t, user);
    await expectError(await deleteAccount(user, 'not my password'), 401, 'INVALID_CREDENTIALS');
    await expectError(await deleteAccount(user, undefined), 400, 'VALIDATION_ERROR');
    await expectError(await t.fetch('/api/users/me', { method: 'DELETE', headers: user.auth }), 400, 'VALIDATION_ERROR');
    expect((await t.fetch('/api/users/me', { headers: user.auth })).status).toBe(200);
    expect(await t.sql('select 1 from groups where id = $1', [orbit.id])).toHaveLength(1);
  });

  it("scrubs the account's name and key from the events it wrote; others' events stay whole", async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const user = await addMember(t, owner, orbit);
    const thread = await newThread(t, user, orbit.id);
    await newReply(t, user, thread.id);
    const ownThread = await newThread(t, owner, orbit.id);
    // An orbit the user joined and left before deleting the account keeps the name too.
    const other = await createOrbit(t, owner);
    await joinOrbit(t, user, await createInvite(t, owner, other.id));
    expect((await t.fetch(`/api/groups/${other.id}/members/${user.id}`, { method: 'DELETE', headers: user.auth })).status).toBe(204);
    const logged = async () => (await t.sql<{ data: string }>('select data::text as data from orbit_events where group_id in ($1, $2)', [orbit.id, other.id])).map((r) => r.data).join('\n');
    expect(await logged()).toContain(user.username);

    expect((await deleteAccount(user, user.password)).status).toBe(204);
    const after = await logged();
    expect(after).not.toContain(user.username);
    expect(after).not.toContain(user.publicKey.x);
    // Only the departure itself names the account, by id: members' clients act on it.
    expect(await t.sql('select type from orbit_events where actor_id = $1', [user.id])).toEqual([{ type: 'member_left' }]);
    // Events keep their shape, with the identity fields null, as the views show them.
    const events = await allEvents(t, owner, orbit.id);
    const created = events.find((e) => e.type === 'thread_created' && e.data.id === thread.id);
    expect(created).toMatchObject({ actor_id: null, data: { id: thread.id, author_id: null, author_username: null } });
    expect(created.data.encrypted_title).toBe(thread.encrypted_title);
    const joined = events.find((e) => e.type === 'member_joined' && e.data.user_id === user.id);
    expect(joined).toMatchObject({ data: { username: null, public_key: null } });
    const mine = events.find((e) => e.type === 'thread_created' && e.data.id === ownThread.id);
    expect(mine).toMatchObject({ actor_id: owner.id, data: { author_id: owner.id, author_username: owner.username } });
  });

  it('needs a live session', async () => {
    const user = await registerUser(t);
    await t.fetch('/api/auth/logout', post({ refresh_token: user.refresh }));
    await expectError(await deleteAccount(user, user.password), 401, 'UNAUTHENTICATED');
    expect(await t.sql('select 1 from users where id = $1', [user.id])).toHaveLength(1);
  });
});
