// Invites: creation, expiry, use counting, revocation, the owner's list, the active cap, joins
// under concurrency, and failed joins counting against the join budgets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, createOrbit, expectError, post, publicKey, registerUser, type TestUser } from '../support/api';
import { createInviteFull, getJson, join, randomIp } from '../support/orbits';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const users = (n: number, target = t) => Promise.all(Array.from({ length: n }, () => registerUser(target)));
const revoke = (owner: TestUser, groupId: string, codeOrId: string) =>
  t.fetch(`/api/groups/${groupId}/invites/${codeOrId}`, { method: 'DELETE', headers: owner.auth });
const activeIds = async (owner: TestUser, groupId: string) => (await getJson(t, `/api/groups/${groupId}/invites?limit=100`, owner)).items.map((i: any) => i.id);
const swapCase = (s: string) => [...s].map((ch) => (ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase())).join('');

describe('POST /api/groups/:groupId/invites', () => {
  it('creates 8-character codes with a 7-day default expiry and one use', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const before = Date.now();
    const invite = await createInviteFull(t, owner, orbit.id);
    expect(invite.code).toMatch(/^[A-Za-z0-9]{8}$/);
    expect(invite).toMatchObject({ max_uses: 1, uses: 0, code_hint: invite.code.slice(0, 2) });
    const ttl = new Date(invite.expires_at).getTime() - before;
    expect(ttl).toBeGreaterThan(604_800_000 - 60_000);
    expect(ttl).toBeLessThanOrEqual(604_800_000 + 60_000);
    const custom = await createInviteFull(t, owner, orbit.id, { expires_in_seconds: 60, max_uses: 1000 });
    expect(custom.max_uses).toBe(1000);
    expect(new Date(custom.expires_at).getTime() - new Date(custom.created_at).getTime()).toBe(60_000);
    expect(new Set([orbit.inviteCode, invite.code, custom.code]).size).toBe(3);
  });

  it('refuses expiry and use counts out of range', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    for (const body of [{ expires_in_seconds: 59 }, { expires_in_seconds: 2_592_001 }, { max_uses: 0 }, { max_uses: 1001 }, { max_uses: 1.5 }, { max_uses: '2' }]) {
      await expectError(await t.fetch(`/api/groups/${orbit.id}/invites`, post(body, owner.auth)), 400, 'VALIDATION_ERROR');
    }
    expect((await createInviteFull(t, owner, orbit.id, { expires_in_seconds: 2_592_000 })).code).toMatch(/^[A-Za-z0-9]{8}$/);
  });

  it('keeps at most 50 active invites per orbit, also under concurrent creation', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    // The orbit's first invite is active: 44 more make 45.
    for (let i = 0; i < 44; i++) await createInviteFull(t, owner, orbit.id);
    const results = await Promise.all(Array.from({ length: 10 }, () => t.fetch(`/api/groups/${orbit.id}/invites`, post({}, owner.auth))));
    expect(results.filter((r) => r.status === 201)).toHaveLength(5);
    const refused = results.filter((r) => r.status !== 201);
    for (const r of refused) expect((await expectError(r, 409, 'CONFLICT')).details).toEqual({ max_active_invites: 50 });
    expect(await activeIds(owner, orbit.id)).toHaveLength(50);

    // An invite that no longer admits anyone does not count.
    const [some] = await activeIds(owner, orbit.id);
    expect((await revoke(owner, orbit.id, some)).status).toBe(204);
    expect((await t.fetch(`/api/groups/${orbit.id}/invites`, post({}, owner.auth))).status).toBe(201);
  });
});

describe('joining with an invite', () => {
  it('matches codes exactly and counts uses up to max_uses', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const invite = await createInviteFull(t, owner, orbit.id, { max_uses: 2 });
    const [a, b, c] = await users(3);
    if (/[A-Za-z]/.test(invite.code)) await expectError(await join(t, a!, swapCase(invite.code)), 404, 'NOT_FOUND');
    await expectError(await join(t, a!, `${invite.code} `), 404, 'NOT_FOUND');
    await expectError(await join(t, a!, invite.code.slice(0, 7)), 404, 'NOT_FOUND');
    expect((await join(t, a!, invite.code)).status).toBe(200);
    await expectError(await join(t, a!, invite.code), 409, 'ALREADY_MEMBER');
    expect((await join(t, b!, invite.code)).status).toBe(200);
    await expectError(await join(t, c!, invite.code), 404, 'NOT_FOUND');
    const [row] = await t.sql<{ uses: number }>('select uses from invites where id = $1', [invite.id]);
    expect(row!.uses).toBe(2);
    expect(await activeIds(owner, orbit.id)).not.toContain(invite.id);
  });

  it('refuses an expired invite', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const invite = await createInviteFull(t, owner, orbit.id, { max_uses: 3 });
    const [a, b] = await users(2);
    expect((await join(t, a!, invite.code)).status).toBe(200);
    await t.sql(`update invites set expires_at = now() - interval '1 second' where id = $1`, [invite.id]);
    await expectError(await join(t, b!, invite.code), 404, 'NOT_FOUND');
    expect(await activeIds(owner, orbit.id)).not.toContain(invite.id);
  });

  it('lets exactly 3 of 20 concurrent joins through on an invite with 3 uses left', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const invite = await createInviteFull(t, owner, orbit.id, { max_uses: 5 });
    for (const early of await users(2)) expect((await join(t, early, invite.code)).status).toBe(200);
    const joiners = await users(20);
    const results = await Promise.all(joiners.map((u) => join(t, u, invite.code)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 404)).toHaveLength(17);
    const [row] = await t.sql<{ uses: number; member_count: number }>(
      'select i.uses, g.member_count from invites i join groups g on g.id = i.group_id where i.id = $1',
      [invite.id],
    );
    expect(row).toEqual({ uses: 5, member_count: 6 });
    const members = await getJson(t, `/api/groups/${orbit.id}/members`, owner);
    expect(members.items).toHaveLength(6);
  });

  it('lets exactly 1 of 10 concurrent joins into an orbit with room for one more', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await addMember(t, owner, orbit);
    await t.sql('update groups set max_members = 3 where id = $1', [orbit.id]);
    const invite = await createInviteFull(t, owner, orbit.id, { max_uses: 20 });
    const joiners = await users(10);
    const results = await Promise.all(joiners.map((u) => join(t, u, invite.code)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    const full = results.filter((r) => r.status !== 200);
    expect(full).toHaveLength(9);
    for (const r of full) expect((await expectError(r, 409, 'CONFLICT')).details).toEqual({ max_members: 3 });
    const [row] = await t.sql<{ uses: number; member_count: number }>(
      'select i.uses, g.member_count from invites i join groups g on g.id = i.group_id where i.id = $1',
      [invite.id],
    );
    expect(row).toEqual({ uses: 1, member_count: 3 });
    expect((await getJson(t, `/api/groups/${orbit.id}`, owner)).max_members).toBe(3);
  });
});

describe('GET and DELETE /api/groups/:groupId/invites', () => {
  it('lists active invites oldest first, without codes (the server keeps only hashes), in pages', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const created = [await createInviteFull(t, owner, orbit.id), await createInviteFull(t, owner, orbit.id, { max_uses: 4 })];
    const page1 = await getJson(t, `/api/groups/${orbit.id}/invites?limit=2`, owner);
    expect(page1.items).toHaveLength(2);
    expect(page1.items[0]).toMatchObject({ code: null, code_hint: orbit.inviteCode.slice(0, 2), max_uses: 1, uses: 0 });
    expect(page1.items[1]).toEqual({ ...created[0], code: null });
    const page2 = await getJson(t, `/api/groups/${orbit.id}/invites?limit=2&cursor=${page1.next_cursor}`, owner);
    expect(page2).toEqual({ items: [{ ...created[1], code: null }], next_cursor: null });
    expect(JSON.stringify([page1, page2])).not.toContain(created[0]!.code);
  });

  it('revokes by code or by id; a revoked code no longer admits anyone', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const byCode = await createInviteFull(t, owner, orbit.id, { max_uses: 5 });
    const byId = await createInviteFull(t, owner, orbit.id, { max_uses: 5 });
    const [a, b] = await users(2);
    expect((await join(t, a!, byCode.code)).status).toBe(200);

    expect((await revoke(owner, orbit.id, byCode.code)).status).toBe(204);
    expect((await revoke(owner, orbit.id, byId.id)).status).toBe(204);
    await expectError(await join(t, b!, byCode.code), 404, 'NOT_FOUND');
    await expectError(await join(t, b!, byId.code), 404, 'NOT_FOUND');
    const listed = await activeIds(owner, orbit.id);
    expect(listed).not.toContain(byCode.id);
    expect(listed).not.toContain(byId.id);
    // Revoking again changes nothing; the first revocation time stays.
    const [first] = await t.sql<{ revoked_at: Date }>('select revoked_at from invites where id = $1', [byId.id]);
    expect((await revoke(owner, orbit.id, byId.code)).status).toBe(204);
    const [second] = await t.sql<{ revoked_at: Date }>('select revoked_at from invites where id = $1', [byId.id]);
    expect(new Date(second!.revoked_at).getTime()).toBe(new Date(first!.revoked_at).getTime());
  });

  it("answers 404 for unknown invites and for another orbit's invites", async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const other = await createOrbit(t, owner);
    const theirs = await createInviteFull(t, owner, other.id);
    for (const ref of [theirs.code, theirs.id, crypto.randomUUID(), 'AAAAAAAA', 'not-a-code', 'x'.repeat(64)]) {
      await expectError(await revoke(owner, orbit.id, ref), 404, 'NOT_FOUND');
    }
    await expectError(await revoke(owner, orbit.id, 'x'.repeat(65)), 400, 'VALIDATION_ERROR');
    expect(await activeIds(owner, other.id)).toContain(theirs.id);
  });
});

describe('join budgets (RATE_LIMIT=on)', () => {
  let limited: Target;
  beforeAll(async () => {
    limited = await createTarget({ env: { RATE_LIMIT: 'on' } });
  });
  afterAll(() => limited?.close());

  const hits = async (key: string) =>
    Number((await limited.sql<{ hits: string }>('select hits from rate_limits where key = $1 and window_end > now()', [key]))[0]?.hits ?? 0);
  const tryJoin = (user: TestUser, code: string, ip: string) => limited.fetch('/api/groups/join', { ...post({ invite_code: code }, user.auth), ip });

  it('counts failed joins per user, per address and globally, and refuses once the user budget is spent', async () => {
    const ip = randomIp();
    const owner = await registerUser(limited, { ip: randomIp() });
    const orbit = await createOrbit(limited, owner);
    const guesser = await registerUser(limited, { ip });
    const globalBefore = await hits('join:all');

    for (let i = 0; i < 20; i++) await expectError(await tryJoin(guesser, `Guess${String(i).padStart(3, '0')}`, ip), 404, 'NOT_FOUND');
    expect(await hits(`join:u:${guesser.id}`)).toBe(20);
    expect(await hits(`join:ip:${ip}`)).toBe(20);
    expect(await hits('join:all')).toBeGreaterThanOrEqual(globalBefore + 20);

    // The budget is spent: even a valid code is refused, from any address.
    const refused = await tryJoin(guesser, orbit.inviteCode, randomIp());
    const err = await expectError(refused, 429, 'RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(err.details?.retry_after).toBeGreaterThan(0);
    // Others (from another address) are not affected, and successful joins cost nothing.
    const other = await registerUser(limited, { ip: randomIp() });
    const otherIp = randomIp();
    expect((await tryJoin(other, orbit.inviteCode, otherIp)).status).toBe(200);
    expect(await hits(`join:u:${other.id}`)).toBe(0);
    expect(await hits(`join:ip:${otherIp}`)).toBe(0);
  });

  it('counts failed joins through registration against the address, and refuses once the address budget is spent', async () => {
    const ip = randomIp();
    const owner = await registerUser(limited, { ip: randomIp() });
    const orbit = await createOrbit(limited, owner);
    const res = await limited.fetch('/api/auth/register', {
      ...post({ username: `r_${crypto.randomUUID().slice(0, 8)}`, password: 'correct horse battery staple', public_key: publicKey(), invite_code: 'NoSuch12' }),
      ip,
    });
    await expectError(res, 404, 'NOT_FOUND');
    expect(await hits(`join:ip:${ip}`)).toBe(1);

    // Spend the rest of the address's budget (100 an hour) without 99 more requests.
    await limited.sql('update rate_limits set hits = 100 where key = $1', [`join:ip:${ip}`]);
    const fresh = await registerUser(limited, { ip: randomIp() });
    await expectError(await tryJoin(fresh, orbit.inviteCode, ip), 429, 'RATE_LIMITED');
    expect((await tryJoin(fresh, orbit.inviteCode, randomIp())).status).toBe(200);
  });

  it('refuses every join once the global budget is spent', async () => {
    const owner = await registerUser(limited, { ip: randomIp() });
    const orbit = await createOrbit(limited, owner);
    const user = await registerUser(limited, { ip: randomIp() });
    const [saved] = await limited.sql<{ hits: string; window_start: Date; window_end: Date }>("select hits, window_start, window_end from rate_limits where key = 'join:all'");
    try {
      await limited.sql(
        `insert into rate_limits (key, window_start, window_end, hits) values ('join:all', now(), now() + interval '1 hour', 5000)
         on conflict (key) do update set hits = 5000, window_end = greatest(rate_limits.window_end, now() + interval '1 hour')`,
      );
      await expectError(await tryJoin(user, orbit.inviteCode, randomIp()), 429, 'RATE_LIMITED');
    } finally {
      if (saved) {
        await limited.sql("update rate_limits set hits = $1, window_start = $2, window_end = $3 where key = 'join:all'", [saved.hits, saved.window_start, saved.window_end]);
      } else {
        await limited.sql("delete from rate_limits where key = 'join:all'");
      }
    }
    expect((await tryJoin(user, orbit.inviteCode, randomIp())).status).toBe(200);
  });
});
