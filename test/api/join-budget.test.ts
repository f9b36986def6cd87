// Failed joins count against a per-user budget (20 an hour) before the code is looked up:
// however many attempts arrive at once, exactly the budget's worth get an answer about the code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { createInvite, createOrbit, expectError, expectStatus, post, publicKey, registerUser, unique } from '../support/api';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget({ env: { RATE_LIMIT: 'on' } });
});
afterAll(() => t?.close());

const randomIp = () => `10.${Array.from(crypto.getRandomValues(new Uint8Array(3))).join('.')}`;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const randomCode = () => Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => ALPHABET[b % 62]).join('');
const PER_USER = 20;

describe('failed-join budget', () => {
  it('concurrent joins with unknown codes: exactly the budget gets 404, every other one 429', async () => {
    const user = await registerUser(t, { ip: randomIp() });
    const ip = randomIp();
    // The workerd pool opens a database connection per request: fewer at once there.
    const attempts = t.name === 'workerd' ? 40 : 100;
    const answers = await Promise.all(Array.from({ length: attempts }, () => t.fetch('/api/groups/join', { ...post({ invite_code: randomCode() }, user.auth), ip })));
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 404).length, JSON.stringify(statuses)).toBe(PER_USER);
    expect(statuses.filter((s) => s === 429).length).toBe(attempts - PER_USER);
    for (const res of answers) await expectError(res, res.status, res.status === 404 ? 'NOT_FOUND' : 'RATE_LIMITED');
    // Spent: a valid code is refused too until the window ends.
    const owner = await registerUser(t, { ip: randomIp() });
    const orbit = await createOrbit(t, owner);
    await expectError(await t.fetch('/api/groups/join', { ...post({ invite_code: orbit.inviteCode }, user.auth), ip }), 429, 'RATE_LIMITED');
  });

  it('a join that succeeds gives its unit back; only failures are counted', async () => {
    const user = await registerUser(t, { ip: randomIp() });
    const owner = await registerUser(t, { ip: randomIp() });
    const orbit = await createOrbit(t, owner);
    const join = (code: string) => t.fetch('/api/groups/join', { ...post({ invite_code: code }, user.auth), ip: randomIp() });
    for (let i = 0; i < PER_USER - 1; i++) await expectError(await join(randomCode()), 404, 'NOT_FOUND');
    await expectStatus(await join(orbit.inviteCode), 200);
    await expectError(await join(await createInvite(t, owner, orbit.id)), 409, 'ALREADY_MEMBER');
    await expectError(await join(randomCode()), 404, 'NOT_FOUND');
    await expectError(await join(randomCode()), 429, 'RATE_LIMITED');
  });

  it('registration with unknown invite codes from one address: concurrent attempts cannot overrun its budget', async () => {
    const ip = randomIp();
    // Registrations per address (30 an hour) come first; the join budget per address is 100.
    const answers = await Promise.all(
      Array.from({ length: 30 }, () =>
        t.fetch('/api/auth/register', { ...post({ username: unique(), password: 'twelve chars', public_key: publicKey(), invite_code: randomCode() }), ip }),
      ),
    );
    for (const res of answers) await expectError(res, 404, 'NOT_FOUND');
    const failures = await t.sql<{ hits: string }>('select hits from rate_limits where key = $1', [`join:ip:${ip}`]);
    expect(Number(failures[0]?.hits)).toBe(30);
  });
});
