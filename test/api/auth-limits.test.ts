// Rate limits on register, login and every password check: per IP and per username, checked
// before hashing, 429 with Retry-After; they slow and never lock (the window ends, access returns).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { expectError, post, publicKey, registerUser, unique, type TestUser } from '../support/api';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget({ env: { RATE_LIMIT: 'on' } });
});
afterAll(() => t?.close());

/** A fresh client address, so no other test (or test file sharing the database) shares its budget. */
const randomIp = () => `10.${Array.from(crypto.getRandomValues(new Uint8Array(3))).join('.')}`;

const login = (username: string, password: string, ip = randomIp()) => t.fetch('/api/auth/login', { ...post({ username, password }), ip });

/** Ends the current window of every budget whose key ends with `suffix`, as time passing would. */
const endWindows = (suffix: string) => t.sql(`update rate_limits set window_end = now() - interval '1 second' where key like '%' || $1`, [suffix]);

const drain = async (res: Response) => {
  await res.body?.cancel();
  return res.status;
};

async function expectLimited(res: Response) {
  const err = await expectError(res, 429, 'RATE_LIMITED');
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(3600);
  expect(err.details?.retry_after).toBe(retryAfter);
}

describe('password checks per username', () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await registerUser(t, { ip: randomIp() });
  });

  it('10 failures from anywhere, then 429 even with the right password; the window ends and login works', async () => {
    for (let i = 0; i < 10; i++) expect((await login(user.username, `wrong password ${i}`)).status).toBe(401);
    await expectLimited(await login(user.username, 'another wrong one'));
    await expectLimited(await login(user.username.toUpperCase(), user.password));
    // The account is not locked: other users are unaffected, and the window's end lifts it.
    const other = await registerUser(t, { ip: randomIp() });
    expect((await login(other.username, other.password)).status).toBe(200);
    await endWindows(`:${user.username.toLowerCase()}`);
    expect((await login(user.username, user.password)).status).toBe(200);
  });

  it('successful logins do not count', async () => {
    const fresh = await registerUser(t, { ip: randomIp() });
    for (let i = 0; i < 9; i++) expect((await login(fresh.username, 'wrong password!')).status).toBe(401);
    for (let i = 0; i < 3; i++) expect((await login(fresh.username, fresh.password)).status).toBe(200);
    expect((await login(fresh.username, 'wrong password!')).status).toBe(401);
    await expectLimited(await login(fresh.username, fresh.password));
  });

  it('unknown usernames have budgets too (no difference to tell them apart)', async () => {
    const ghost = unique('ghost');
    for (let i = 0; i < 10; i++) expect((await login(ghost, 'wrong password!')).status).toBe(401);
    await expectLimited(await login(ghost, 'wrong password!'));
  });

  it('concurrent attempts cannot overrun the budget: each takes its unit before hashing', async () => {
    const target = await registerUser(t, { ip: randomIp() });
    const answers = await Promise.all(Array.from({ length: 16 }, () => login(target.username, 'wrong password!')));
    const statuses = await Promise.all(answers.map(drain));
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(10);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(6);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
  });

  it('wrong passwords for account deletion and password change count against the login budget', async () => {
    const victim = await registerUser(t, { ip: randomIp() });
    for (let i = 0; i < 5; i++) {
      await expectError(await t.fetch('/api/users/me', { ...post({ password: 'guess guess' }, victim.auth, 'DELETE'), ip: randomIp() }), 401, 'INVALID_CREDENTIALS');
      const change = post({ current_password: 'guess guess', new_password: 'whatever it is' }, victim.auth, 'PUT');
      await expectError(await t.fetch('/api/users/me/password', { ...change, ip: randomIp() }), 401, 'INVALID_CREDENTIALS');
    }
    await expectLimited(await login(victim.username, victim.password));
    await expectLimited(await t.fetch('/api/users/me', { ...post({ password: victim.password }, victim.auth, 'DELETE'), ip: randomIp() }));
    const change = post({ current_password: victim.password, new_password: 'whatever it is' }, victim.auth, 'PUT');
    await expectLimited(await t.fetch('/api/users/me/password', { ...change, ip: randomIp() }));
    expect((await t.fetch('/api/users/me', { headers: victim.auth })).status).toBe(200);
  });
});

describe('password checks per IP', () => {
  it('50 failures from one address, then 429 for anyone there; other addresses go on; the window ends', async () => {
    const ip = randomIp();
    const user = await registerUser(t, { ip: randomIp() });
    // Different (unknown) usernames, so only the address budget fills up.
    for (let batch = 0; batch < 5; batch++) {
      const statuses = await Promise.all(Array.from({ length: 10 }, () => login(unique('spray'), 'password123456', ip).then(drain)));
      expect(statuses).toEqual(Array(10).fill(401));
    }
    await expectLimited(await login(user.username, user.password, ip));
    // Also the other password checks from that address.
    await expectLimited(await t.fetch('/api/users/me', { ...post({ password: user.password }, user.auth, 'DELETE'), ip }));
    expect((await login(user.username, user.password, randomIp())).status).toBe(200);
    await endWindows(`:${ip}`);
    expect((await login(user.username, user.password, ip)).status).toBe(200);
  });
});

describe('registration', () => {
  it('30 per address per hour, then 429; the window ends and registration works again', async () => {
    const ip = randomIp();
    for (let batch = 0; batch < 3; batch++) await Promise.all(Array.from({ length: 10 }, () => registerUser(t, { ip })));
    const register = () => t.fetch('/api/auth/register', { ...post({ username: unique(), password: 'twelve chars', public_key: publicKey() }), ip });
    await expectLimited(await register());
    expect((await registerUser(t, { ip: randomIp() })).id).toBeTruthy();
    await endWindows(`:${ip}`);
    expect((await register()).status).toBe(201);
  });

  it('10 attempts per username per hour, then 429', async () => {
    const taken = await registerUser(t, { ip: randomIp() });
    const attempt = () => t.fetch('/api/auth/register', { ...post({ username: taken.username, password: 'twelve chars', public_key: publicKey() }), ip: randomIp() });
    // The first registration counted once already.
    for (let i = 0; i < 9; i++) await expectError(await attempt(), 409, 'CONFLICT');
    await expectLimited(await attempt());
  });
});
