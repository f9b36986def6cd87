// REGISTRATION=open|invite|closed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { bearer, createOrbit, expectError, json, post, publicKey, registerUser, unique, type TestUser } from '../support/api';
import { seedUser } from '../support/tokens';
import type { Target } from '../support/types';
import { createRegistrationCode, revokeRegistrationCode } from '../../src/domain/registration/codes';

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

  it('a made-up code answers the same for a taken name as for a free one (no way to learn who has an account)', async () => {
    const seeded = await seedUser(t);
    const taken = await expectError(await registerWith(t, { invite_code: 'ZZZZ9997' }, seeded.username), 404, 'NOT_FOUND');
    const free = await expectError(await registerWith(t, { invite_code: 'ZZZZ9997' }, unique('free')), 404, 'NOT_FOUND');
    expect({ ...taken, request_id: undefined }).toEqual({ ...free, request_id: undefined });
  });
});

describe('REGISTRATION=invite with an operator’s registration code', () => {
  let t: Target;
  let orbit: { id: string; inviteCode: string };
  // What `npm run admin -- registration invite-code` runs (the command itself: test/node/registration-codes.test.ts).
  const issue = (options: { uses?: number; ttlSec?: number; ago?: number } = {}) =>
    t.withDeps((deps) =>
      createRegistrationCode(deps.db, deps.config.jwtSecret, {
        now: new Date(Date.now() - (options.ago ?? 0) * 1000),
        maxUses: options.uses ?? 1,
        expiresInSec: options.ttlSec ?? 604_800,
      }),
    );
  beforeAll(async () => {
    t = await createTarget({ env: { REGISTRATION: 'invite' } });
    orbit = await createOrbit(t, (await seedUser(t)) as unknown as TestUser);
  });
  afterAll(() => t?.close());

  it('creates accounts that join no orbit, as many as the code allows; the next answers as an unknown code does', async () => {
    const { code } = await issue({ uses: 2 });
    expect(code).toMatch(/^[A-Za-z0-9]{8}$/);
    for (const username of [unique('first'), unique('second')]) {
      const res = await registerWith(t, { invite_code: code }, username);
      expect(res.status).toBe(201);
      const body = await json(res);
      expect(body.user.username).toBe(username);
      expect((await json(await t.fetch('/api/groups', { headers: bearer(body.access_token) }))).items).toEqual([]);
      expect((await t.fetch('/api/auth/login', post({ username, password: 'twelve chars' }))).status).toBe(200);
    }
    // Nobody joined the orbit whose invite was not used.
    expect(await t.sql(`select 1 from orbit_events where group_id = $1 and type = 'member_joined'`, [orbit.id])).toHaveLength(0);

    const username = unique('third');
    const unknown = await expectError(await registerWith(t, { invite_code: 'ZZZZ9999' }, username), 404, 'NOT_FOUND');
    const usedUp = await expectError(await registerWith(t, { invite_code: code }, username), 404, 'NOT_FOUND');
    expect({ message: usedUp.message, details: usedUp.details }).toEqual({ message: unknown.message, details: unknown.details });
    expect(await t.sql('select 1 from users where username_lower = $1', [username.toLowerCase()])).toHaveLength(0);
  });

  it('an expired or revoked code answers as an unknown one; an orbit invite still joins its orbit', async () => {
    const unknown = await expectError(await registerWith(t, { invite_code: 'ZZZZ9998' }), 404, 'NOT_FOUND');
    const expired = await issue({ ago: 7200, ttlSec: 3600 });
    expect((await expectError(await registerWith(t, { invite_code: expired.code }), 404, 'NOT_FOUND')).message).toBe(unknown.message);
    const revoked = await issue();
    await t.withDeps((deps) => revokeRegistrationCode(deps.db, deps.config.jwtSecret, revoked.code!, new Date()));
    expect((await expectError(await registerWith(t, { invite_code: revoked.code }), 404, 'NOT_FOUND')).message).toBe(unknown.message);

    const joined = await registerWith(t, { invite_code: orbit.inviteCode });
    expect(joined.status).toBe(201);
    const groups = await json(await t.fetch('/api/groups', { headers: bearer((await json(joined)).access_token) }));
    expect(groups.items.map((g: any) => g.id)).toEqual([orbit.id]);
  });

  it('is no orbit invite: joining with it answers 404 and leaves the code unused', async () => {
    const { code } = await issue();
    const member = await seedUser(t);
    await expectError(await t.fetch('/api/groups/join', post({ invite_code: code }, member.auth)), 404, 'NOT_FOUND');
    expect((await registerWith(t, { invite_code: code })).status).toBe(201);
  });

  it('a one-use code admits exactly one of several simultaneous registrations', async () => {
    const { code } = await issue();
    const statuses = await Promise.all([0, 1, 2, 3].map(() => registerWith(t, { invite_code: code }).then((r) => r.status)));
    expect(statuses.sort()).toEqual([201, 404, 404, 404]);
  });

  it('the cleanup removes used-up, expired and revoked codes and keeps usable ones', async () => {
    expect(Number((await t.sql<{ n: string }>('select count(*) as n from registration_codes'))[0]!.n)).toBeGreaterThan(3);
    const kept = await issue({ uses: 3 });
    await t.cleanup();
    expect((await t.sql<{ id: string }>('select id from registration_codes')).map((r) => r.id)).toEqual([kept.id]);
    expect((await registerWith(t, { invite_code: kept.code })).status).toBe(201);
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
