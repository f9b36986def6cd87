// REGISTRATION=open|invite|closed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { bearer, createOrbit, expectError, json, post, publicKey, registerUser, unique, type TestUser } from '../support/api';
import { seedUser } from '../support/tokens';
import type { Target } from '../support/types';

const registerWith = (t: Target, extra: Record<string, unknown> = {}, username = unique()) =>
  t.fetch('/api/auth/register', post({ username, password: 'twelve chars', public_key: publicKey(), ...extra }));

describe('REGISTRATION=invite', () => {
  let t: Target;
  let orbit: { id: string; inviteCode: string };
  beforeAll(async () => {
    t = await createTarget({ env: { REGISTRATION: 'invite' } });
    // Nobody can register without an invite, so the first account is made in the database.
    const owner = await seedUser(t);
    orbit = await createOrbit(t, owner as unknown as TestUser);
  });
  afterAll(() => t?.close());

  it('is announced in /api/config', async () => {
    expect((await json(await t.fetch('/api/config'))).registration).toBe('invite');
  });

  it('a valid code creates the account as a pending member of the invite’s orbit', async () => {
    const res = await registerWith(t, { invite_code: orbit.inviteCode });
    expect(res.status).toBe(201);
    const body = await json(res);
    const groups = await json(await t.fetch('/api/groups', { headers: bearer(body.access_token) }));
    expect(groups.items).toEqual([expect.objectContaining({ id: orbit.id, role: 'member', key_status: 'pending', encrypted_group_key: null })]);
    const [event] = await t.sql<{ type: string; data: any }>(`select type, data from orbit_events where group_id = $1 and type = 'member_joined'`, [orbit.id]);
    expect(event!.data).toMatchObject({ user_id: body.user.id, key_status: 'pending' });
  });

  it('no code → 400; an unknown or used-up code → 404, and no account is created', async () => {
    const username = unique('late');
    const err = await expectError(await registerWith(t, {}, username), 400, 'VALIDATION_ERROR');
    expect(JSON.stringify(err.details)).toContain('invite_code');
    await expectError(await registerWith(t, { invite_code: 'ZZZZ9999' }, username), 404, 'NOT_FOUND');
    // The orbit's first invite admits one person and was used above.
    await expectError(await registerWith(t, { invite_code: orbit.inviteCode }, username), 404, 'NOT_FOUND');
    expect(await t.sql('select 1 from users where username_lower = $1', [username.toLowerCase()])).toHaveLength(0);
    await expectError(await t.fetch('/api/auth/login', post({ username, password: 'twelve chars' })), 401, 'INVALID_CREDENTIALS');
  });
});

describe('REGISTRATION=closed', () => {
  let t: Target;
  beforeAll(async () => {
    t = await createTarget({ env: { REGISTRATION: 'closed' } });
  });
  afterAll(() => t?.close());

  it('refuses every registration with 403, with or without a code', async () => {
    const err = await expectError(await registerWith(t), 403, 'FORBIDDEN');
    expect(err.message).toMatch(/closed/i);
    await expectError(await registerWith(t, { invite_code: 'ABCD1234' }), 403, 'FORBIDDEN');
    expect((await json(await t.fetch('/api/config'))).registration).toBe('closed');
  });
});

describe('REGISTRATION=open (default)', () => {
  let t: Target;
  beforeAll(async () => {
    t = await createTarget();
  });
  afterAll(() => t?.close());

  it('an invite code is optional; given, the new account joins that orbit', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const res = await registerWith(t, { invite_code: orbit.inviteCode });
    expect(res.status).toBe(201);
    const groups = await json(await t.fetch('/api/groups', { headers: bearer((await json(res)).access_token) }));
    expect(groups.items.map((g: any) => [g.id, g.key_status])).toEqual([[orbit.id, 'pending']]);
    await expectError(await registerWith(t, { invite_code: 'nope1234' }), 404, 'NOT_FOUND');
  });
});
