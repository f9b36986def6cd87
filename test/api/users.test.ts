// The caller's account, sessions and keys; co-members' public keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, b64, bearer, createInvite, createOrbit, deliverKey, expectError, joinOrbit, json, post, publicKey, registerUser, type TestUser } from '../support/api';
import { claimsOf } from '../support/tokens';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const put = (path: string, user: { auth: Record<string, string> }, body: unknown) => t.fetch(path, post(body, user.auth, 'PUT'));
const del = (path: string, user: { auth: Record<string, string> }, body?: unknown) =>
  t.fetch(path, body === undefined ? { method: 'DELETE', headers: user.auth } : post(body, user.auth, 'DELETE'));
const get = (path: string, user: { auth: Record<string, string> }) => t.fetch(path, { headers: user.auth });
const login = async (user: TestUser, password = user.password, ua?: string) => {
  const res = await t.fetch('/api/auth/login', post({ username: user.username, password }, ua ? { 'user-agent': ua } : {}));
  expect(res.status).toBe(200);
  const body = await json(res);
  return { access: body.access_token as string, refresh: body.refresh_token as string, auth: bearer(body.access_token) };
};
const refresh = (token: string) => t.fetch('/api/auth/refresh', post({ refresh_token: token }));

describe('GET /api/users/me', () => {
  it('answers the account', async () => {
    const user = await registerUser(t);
    const res = await get('/api/users/me', user);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await json(res)).toEqual({ id: user.id, username: user.username, public_key: user.publicKey, key_version: 1, created_at: expect.any(String) });
  });

  it('needs a token', async () => {
    await expectError(await t.fetch('/api/users/me'), 401, 'UNAUTHENTICATED');
  });
});

describe('PUT /api/users/me/password', () => {
  it('changes the password and ends every other session', async () => {
    const user = await registerUser(t);
    const other = await login(user);
    expect((await get('/api/users/me', other)).status).toBe(200); // cached as live
    const res = await put('/api/users/me/password', user, { current_password: user.password, new_password: 'a brand new password' });
    expect(res.status).toBe(204);
    await expectError(await get('/api/users/me', other), 401, 'UNAUTHENTICATED');
    await expectError(await refresh(other.refresh), 401, 'UNAUTHENTICATED');
    // The current session goes on.
    expect((await get('/api/users/me', user)).status).toBe(200);
    expect((await refresh(user.refresh)).status).toBe(200);
    await expectError(await t.fetch('/api/auth/login', post({ username: user.username, password: user.password })), 401, 'INVALID_CREDENTIALS');
    await login(user, 'a brand new password');
  });

  it('a wrong current password → 401 INVALID_CREDENTIALS, and nothing changes', async () => {
    const user = await registerUser(t);
    const other = await login(user);
    await expectError(await put('/api/users/me/password', user, { current_password: 'not my password', new_password: 'a brand new password' }), 401, 'INVALID_CREDENTIALS');
    expect((await get('/api/users/me', other)).status).toBe(200);
    await login(user);
  });

  it('the new password needs 12–256 characters; both fields are required', async () => {
    const user = await registerUser(t);
    await expectError(await put('/api/users/me/password', user, { current_password: user.password, new_password: 'x'.repeat(11) }), 400, 'VALIDATION_ERROR');
    await expectError(await put('/api/users/me/password', user, { current_password: user.password, new_password: 'x'.repeat(257) }), 400, 'VALIDATION_ERROR');
    await expectError(await put('/api/users/me/password', user, { new_password: 'x'.repeat(12) }), 400, 'VALIDATION_ERROR');
    expect((await put('/api/users/me/password', user, { current_password: user.password, new_password: 'x'.repeat(12) })).status).toBe(204);
  });
});

describe('sessions', () => {
  it('lists live sessions and marks the current one', async () => {
    const user = await registerUser(t);
    const phone = await login(user, user.password, 'orbital-phone/2.0');
    const ended = await login(user);
    await t.fetch('/api/auth/logout', post({ refresh_token: ended.refresh }));
    const res = await get('/api/users/me/sessions', phone);
    expect(res.status).toBe(200);
    const { items } = await json(res);
    expect(items).toHaveLength(2);
    const current = items.find((s: any) => s.current);
    expect(current).toEqual({ id: claimsOf(phone.access).sid, created_at: expect.any(String), last_used_at: expect.any(String), user_agent: 'orbital-phone/2.0', current: true });
    expect(items.filter((s: any) => s.current)).toHaveLength(1);
    expect(items.map((s: any) => s.id)).toContain(claimsOf(user.access).sid);
    expect(items.map((s: any) => s.id)).not.toContain(claimsOf(ended.access).sid);
  });

  it('DELETE one session: its tokens stop working, the others go on', async () => {
    const user = await registerUser(t);
    const laptop = await login(user);
    expect((await get('/api/users/me', laptop)).status).toBe(200);
    const res = await del(`/api/users/me/sessions/${claimsOf(laptop.access).sid}`, user);
    expect(res.status).toBe(204);
    await expectError(await get('/api/users/me', laptop), 401, 'UNAUTHENTICATED');
    await expectError(await refresh(laptop.refresh), 401, 'UNAUTHENTICATED');
    expect((await get('/api/users/me', user)).status).toBe(200);
    // Again: already ended, still 204.
    expect((await del(`/api/users/me/sessions/${claimsOf(laptop.access).sid}`, user)).status).toBe(204);
  });

  it('DELETE one session: unknown or someone else’s → 404; not a uuid → 400', async () => {
    const user = await registerUser(t);
    const stranger = await registerUser(t);
    await expectError(await del(`/api/users/me/sessions/${crypto.randomUUID()}`, user), 404, 'NOT_FOUND');
    await expectError(await del(`/api/users/me/sessions/${claimsOf(stranger.access).sid}`, user), 404, 'NOT_FOUND');
    expect((await get('/api/users/me', stranger)).status).toBe(200);
    await expectError(await del('/api/users/me/sessions/not-a-uuid', user), 400, 'VALIDATION_ERROR');
  });

  it('DELETE all sessions ends every one but the current', async () => {
    const user = await registerUser(t);
    const a = await login(user);
    const b = await login(user);
    expect((await del('/api/users/me/sessions', user)).status).toBe(204);
    for (const s of [a, b]) {
      await expectError(await get('/api/users/me', s), 401, 'UNAUTHENTICATED');
      await expectError(await refresh(s.refresh), 401, 'UNAUTHENTICATED');
    }
    const { items } = await json(await get('/api/users/me/sessions', user));
    expect(items.map((s: any) => s.id)).toEqual([claimsOf(user.access).sid]);
  });

  it('revoking the current session ends it like a logout', async () => {
    const user = await registerUser(t);
    expect((await del(`/api/users/me/sessions/${claimsOf(user.access).sid}`, user)).status).toBe(204);
    await expectError(await get('/api/users/me', user), 401, 'UNAUTHENTICATED');
  });
});

describe('PUT /api/users/me/public-key', () => {
  it('bumps key_version, returns every membership to pending and tells each orbit', async () => {
    const owner = await registerUser(t);
    const user = await registerUser(t);
    const mine = await createOrbit(t, user);
    const theirs = await createOrbit(t, owner);
    const member = await addMember(t, owner, theirs);
    await joinOrbit(t, user, await createInvite(t, owner, theirs.id));
    await deliverKey(t, owner, theirs.id, user.id);
    const before = await json(await get('/api/groups', user));
    expect(before.items.map((g: any) => g.key_status)).toEqual(['delivered', 'delivered']);

    const key = publicKey();
    expect((await put('/api/users/me/public-key', user, { public_key: key })).status).toBe(204);

    expect(await json(await get('/api/users/me', user))).toMatchObject({ public_key: key, key_version: 2 });
    const after = await json(await get('/api/groups', user));
    expect(after.items.map((g: any) => [g.key_status, g.encrypted_group_key])).toEqual([
      ['pending', null],
      ['pending', null],
    ]);
    const keys = await t.sql('select 1 from member_keys where user_id = $1', [user.id]);
    expect(keys).toHaveLength(0);
    for (const orbit of [mine, theirs]) {
      const events = await t.sql<{ type: string; actor_id: string; data: any }>(
        `select type, actor_id, data from orbit_events where group_id = $1 and type = 'member_key_reset'`,
        [orbit.id],
      );
      expect(events).toEqual([{ type: 'member_key_reset', actor_id: user.id, data: expect.objectContaining({ user_id: user.id, public_key: key, key_version: 2 }) }]);
    }
    // A co-member sees the new key.
    expect(await json(await get(`/api/users/${user.id}/public-key`, member))).toEqual({ user_id: user.id, username: user.username, public_key: key, key_version: 2 });
  });

  it('refuses an invalid JWK → 400 and keeps the old one', async () => {
    const user = await registerUser(t);
    const coord = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
    await expectError(await put('/api/users/me/public-key', user, { public_key: { ...publicKey(), d: coord } }), 400, 'VALIDATION_ERROR');
    await expectError(await put('/api/users/me/public-key', user, { public_key: { kty: 'oct', k: coord } }), 400, 'VALIDATION_ERROR');
    await expectError(await put('/api/users/me/public-key', user, {}), 400, 'VALIDATION_ERROR');
    expect(await json(await get('/api/users/me', user))).toMatchObject({ public_key: user.publicKey, key_version: 1 });
  });
});

describe('key backup', () => {
  const kdf = { name: 'argon2id', salt: 'c2FsdHNhbHRzYWx0', m: 65536, t: 3, p: 1 };

  it('GET is 404 until one is stored; PUT stores and replaces it', async () => {
    const user = await registerUser(t);
    await expectError(await get('/api/users/me/key-backup', user), 404, 'NOT_FOUND');
    const backup = b64(2000);
    expect((await put('/api/users/me/key-backup', user, { backup, kdf })).status).toBe(204);
    expect(await json(await get('/api/users/me/key-backup', user))).toEqual({ backup, kdf });
    const again = { backup: b64(16 * 1024), kdf: { ...kdf, t: 4 } };
    expect((await put('/api/users/me/key-backup', user, again)).status).toBe(204);
    expect(await json(await get('/api/users/me/key-backup', user))).toEqual(again);
    // Stored as bytes, not as the base64 text.
    const [row] = await t.sql<{ n: number }>('select octet_length(key_backup) as n from users where id = $1', [user.id]);
    expect(Number(row!.n)).toBe(16 * 1024);
  });

  it('over 16 KiB → 413; not base64 → 400; kdf over 1 KiB → 413; kdf not an object → 400', async () => {
    const user = await registerUser(t);
    await expectError(await put('/api/users/me/key-backup', user, { backup: b64(16 * 1024 + 1), kdf }), 413, 'PAYLOAD_TOO_LARGE');
    await expectError(await put('/api/users/me/key-backup', user, { backup: 'not base64!', kdf }), 400, 'VALIDATION_ERROR');
    await expectError(await put('/api/users/me/key-backup', user, { backup: b64(64), kdf: { pad: 'x'.repeat(1100) } }), 413, 'PAYLOAD_TOO_LARGE');
    for (const bad of ['argon2id', [1, 2], null]) {
      await expectError(await put('/api/users/me/key-backup', user, { backup: b64(64), kdf: bad }), 400, 'VALIDATION_ERROR');
    }
    await expectError(await put('/api/users/me/key-backup', user, { backup: b64(64) }), 400, 'VALIDATION_ERROR');
    await expectError(await get('/api/users/me/key-backup', user), 404, 'NOT_FOUND');
  });

  it('each user sees only their own', async () => {
    const a = await registerUser(t);
    const b = await registerUser(t);
    await put('/api/users/me/key-backup', a, { backup: b64(100), kdf });
    await expectError(await get('/api/users/me/key-backup', b), 404, 'NOT_FOUND');
  });
});

describe('GET /api/users/:userId/public-key', () => {
  it('answers for co-members (pending ones too), and for oneself', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const res = await get(`/api/users/${member.id}/public-key`, owner);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ user_id: member.id, username: member.username, public_key: member.publicKey, key_version: 1 });
    expect(await json(await get(`/api/users/${owner.id}/public-key`, member))).toMatchObject({ user_id: owner.id });
    expect(await json(await get(`/api/users/${owner.id}/public-key`, owner))).toMatchObject({ user_id: owner.id });
    expect(await json(await get('/api/users/me/public-key', owner))).toMatchObject({ user_id: owner.id, public_key: owner.publicKey });
  });

  it('a user sharing no orbit, an unknown id → 404 alike; not a uuid → 400', async () => {
    const owner = await registerUser(t);
    await createOrbit(t, owner);
    const stranger = await registerUser(t);
    const a = await expectError(await get(`/api/users/${stranger.id}/public-key`, owner), 404, 'NOT_FOUND');
    const b = await expectError(await get(`/api/users/${crypto.randomUUID()}/public-key`, owner), 404, 'NOT_FOUND');
    expect(a.message).toBe(b.message);
    await expectError(await get('/api/users/nobody/public-key', owner), 400, 'VALIDATION_ERROR');
  });
});

describe('OpenAPI', () => {
  it('documents every /api/users call', async () => {
    const doc = await json(await t.fetch('/openapi.json'));
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/api/users/me',
        '/api/users/me/password',
        '/api/users/me/sessions',
        '/api/users/me/sessions/{sessionId}',
        '/api/users/me/public-key',
        '/api/users/me/key-backup',
        '/api/users/{userId}/public-key',
      ]),
    );
    expect(Object.keys(doc.paths['/api/users/me'])).toEqual(expect.arrayContaining(['get', 'delete']));
    expect(doc.paths['/api/users/me'].delete.requestBody).toBeTruthy();
    expect(Object.keys(doc.paths['/api/users/me/key-backup'])).toEqual(expect.arrayContaining(['get', 'put']));
  });
});
