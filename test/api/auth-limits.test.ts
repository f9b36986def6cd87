// Rate limits on register, login and every password check, taken before hashing, 429 with
// Retry-After: per (username, address) and per address for logins, per account for a signed-in
// account's own checks; failures of a username from everywhere only slow. Nothing locks the owner out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { expectError, expectStatus, post, publicKey, registerUser, unique, type TestUser } from '../support/api';
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

  it('10 failures from one address: 429 there, even with the right password; the owner elsewhere logs in', async () => {
    const attacker = randomIp();
    for (let i = 0; i < 10; i++) expect((await login(user.username, `wrong password ${i}`, attacker)).status).toBe(401);
    await expectLimited(await login(user.username, 'another wrong one', attacker));
    await expectLimited(await login(user.username.toUpperCase(), user.password, attacker));
    // Never a lockout: the owner at another address gets in, and the window's end lifts the rest.
    expect((await login(user.username, user.password, randomIp())).status).toBe(200);
    await endWindows(`:${user.username.toLowerCase()}:${attacker}`);
    expect((await login(user.username, user.password, attacker)).status).toBe(200);
  });

  it('failures from many addresses slow the username down but never refuse its owner', async () => {
    const victim = await registerUser(t, { ip: randomIp() });
    // 15 strangers, 1 to 2 guesses each: past the per-username ceiling of 10, under every per-address budget.
    const strangers = Array.from({ length: 15 }, randomIp);
    for (const ip of strangers) expect((await login(victim.username, 'not the password', ip)).status).toBe(401);
    for (const ip of strangers.slice(0, 5)) expect((await login(victim.username, 'still not it', ip)).status).toBe(401);
    const counted = await t.sql<{ hits: string }>('select hits from rate_limits where key = $1', [`pw:u:${victim.username.toLowerCase()}`]);
    expect(Number(counted[0]?.hits)).toBe(20);
    expect((await login(victim.username, victim.password, randomIp())).status).toBe(200);
  });

  it('successful logins do not count', async () => {
    const fresh = await registerUser(t, { ip: randomIp() });
    const ip = randomIp();
    for (let i = 0; i < 9; i++) expect((await login(fresh.username, 'wrong password!', ip)).status).toBe(401);
    for (let i = 0; i < 3; i++) expect((await login(fresh.username, fresh.password, ip)).status).toBe(200);
    expect((await login(fresh.username, 'wrong password!', ip)).status).toBe(401);
    await expectLimited(await login(fresh.username, fresh.password, ip));
  });

  it('unknown usernames have budgets too (no difference to tell them apart)', async () => {
    const ghost = unique('ghost');
    const ip = randomIp();
    for (let i = 0; i < 10; i++) expect((await login(ghost, 'wrong password!', ip)).status).toBe(401);
    await expectLimited(await login(ghost, 'wrong password!', ip));
  });

  it('concurrent attempts cannot overrun the budget: each takes its unit before hashing', async () => {
    const target = await registerUser(t, { ip: randomIp() });
    const ip = randomIp();
    const answers = await Promise.all(Array.from({ length: 16 }, () => login(target.username, 'wrong password!', ip)));
    const statuses = await Promise.all(answers.map(drain));
    expect(statuses.filter((s) => s === 401).length).toBe(10);
    expect(statuses.filter((s) => s === 429).length).toBe(6);
  });
});

describe('password checks of a signed-in account', () => {
  const deleteMe = (u: TestUser, password: string, ip = randomIp()) => t.fetch('/api/users/me', { ...post({ password }, u.auth, 'DELETE'), ip });
  const changePassword = (u: TestUser, current: string, ip = randomIp()) =>
    t.fetch('/api/users/me/password', { ...post({ current_password: current, new_password: 'a new password!' }, u.auth, 'PUT'), ip });

  it('strangers failing logins from everywhere cannot block password change or account deletion', async () => {
    const victim = await registerUser(t, { ip: randomIp() });
    const home = randomIp();
    // The owner's own address spent by someone behind the same NAT, and the username from everywhere.
    for (let batch = 0; batch < 5; batch++) {
      const statuses = await Promise.all(Array.from({ length: 10 }, () => login(unique('spray'), 'password123456', home).then(drain)));
      expect(statuses).toEqual(Array(10).fill(401));
    }
    for (let i = 0; i < 12; i++) expect((await login(victim.username, 'guess guess', randomIp())).status).toBe(401);
    await expectLimited(await login(victim.username, victim.password, home));
    await expectStatus(await changePassword(victim, victim.password, home), 204);
    await expectStatus(await deleteMe(victim, 'a new password!', home), 204);
  });

  it("a session holder's wrong guesses: 10 per 15 min, then 429 for this account only", async () => {
    const victim = await registerUser(t, { ip: randomIp() });
    for (let i = 0; i < 5; i++) {
      await expectError(await deleteMe(victim, 'guess guess'), 401, 'INVALID_CREDENTIALS');
      await expectError(await changePassword(victim, 'guess guess'), 401, 'INVALID_CREDENTIALS');
    }
    await expectLimited(await deleteMe(victim, victim.password));
    await expectLimited(await changePassword(victim, victim.password));
    // The guesses also count towards the username's login slowdown, which never refuses.
    expect((await login(victim.username, victim.password)).status).toBe(200);
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
    // Not the checks of a signed-in account: strangers at that address cannot spend those.
    await expectError(await t.fetch('/api/users/me', { ...post({ password: 'not the password' }, user.auth, 'DELETE'), ip }), 401, 'INVALID_CREDENTIALS');
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
