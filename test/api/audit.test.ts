// The audit trail: every sensitive action leaves one row, in the action's own transaction, with
// ids, the action, a short detail and the caller's network (/24, /48), and nothing else: no
// username, password, invite code or ciphertext. The retention cleanup removes old rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { b64, deliverKey, expectError, expectStatus, json, post, registerUser, type TestUser } from '../support/api';
import { rotate } from '../support/orbits';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget({ env: { RATE_LIMIT: 'on' } });
});
afterAll(() => t?.close());

interface Row {
  action: string;
  via: string;
  actor_id: string | null;
  target_id: string | null;
  group_id: string | null;
  detail: string | null;
  address: string | null;
}

const HOME = '198.51.100.23';
const HOME_NET = '198.51.100.0/24';
const MOBILE = '2001:db8:abcd:12::1';
const MOBILE_NET = '2001:db8:abcd::/48';

const trail = (ids: string[]) =>
  t.sql<Row & { at: Date }>(
    `select action, via, actor_id, target_id, group_id, detail, address, at from audit_events
     where actor_id = any($1::uuid[]) or target_id = any($1::uuid[]) order by at, action`,
    [ids],
  );
const call = (path: string, user: TestUser, ip: string, init: { method?: string; body?: unknown } = {}) =>
  t.fetch(path, { ...post(init.body ?? {}, user.auth, init.method ?? 'POST'), ip });

describe('audit trail', () => {
  it('records each sensitive action once, with ids, a detail and the caller’s network, and no secret or content', async () => {
    const alice = await registerUser(t, { ip: HOME });
    const bob = await registerUser(t, { ip: MOBILE });
    const created = await json(await expectStatus(await call('/api/groups', alice, HOME, { body: { encrypted_name: b64(24), encrypted_group_key: b64(64) } }), 201));
    const orbit = created.group.id as string;
    const extra = await json(await expectStatus(await call(`/api/groups/${orbit}/invites`, alice, HOME), 201));
    await expectStatus(await call(`/api/groups/${orbit}/invites/${extra.id}`, alice, HOME, { method: 'DELETE' }), 204);
    await expectStatus(await call(`/api/groups/${orbit}/invites/${extra.id}`, alice, HOME, { method: 'DELETE' }), 204); // a retry: no second row
    await expectStatus(await t.fetch('/api/groups/join', post({ invite_code: created.invite.code }, bob.auth)), 200);
    await deliverKey(t, alice, orbit, bob.id);
    expect((await rotate(t, alice, orbit, 2, [alice.id, bob.id])).status).toBe(201);
    await expectStatus(await call(`/api/groups/${orbit}/owner`, alice, HOME, { method: 'PUT', body: { user_id: bob.id } }), 204);
    await expectStatus(await call(`/api/groups/${orbit}/members/${alice.id}`, bob, MOBILE, { method: 'DELETE' }), 204);
    await expectStatus(await call('/api/users/me/password', bob, MOBILE, { method: 'PUT', body: { current_password: bob.password, new_password: 'another long password' } }), 204);
    await expectStatus(await call('/api/users/me/sessions', alice, HOME, { method: 'DELETE' }), 204);
    await expectStatus(await call('/api/users/me', bob, MOBILE, { method: 'DELETE', body: { password: 'another long password' } }), 204);

    const rows = (await trail([alice.id, bob.id])).map(({ at: _, ...r }) => r);
    const api = (actor: string, address: string) => ({ via: 'api', actor_id: actor, address });
    expect(rows).toEqual([
      { action: 'account.created', ...api(alice.id, HOME_NET), target_id: alice.id, group_id: null, detail: null },
      { action: 'account.created', ...api(bob.id, MOBILE_NET), target_id: bob.id, group_id: null, detail: null },
      { action: 'invite.created', ...api(alice.id, HOME_NET), target_id: null, group_id: orbit, detail: null },
      { action: 'invite.created', ...api(alice.id, HOME_NET), target_id: null, group_id: orbit, detail: null },
      { action: 'invite.revoked', ...api(alice.id, HOME_NET), target_id: null, group_id: orbit, detail: null },
      { action: 'key.rotated', actor_id: alice.id, via: 'api', address: expect.any(String), target_id: null, group_id: orbit, detail: 'epoch_2' },
      { action: 'ownership.transferred', ...api(alice.id, HOME_NET), target_id: bob.id, group_id: orbit, detail: 'transferred' },
      { action: 'member.removed', ...api(bob.id, MOBILE_NET), target_id: alice.id, group_id: orbit, detail: 'removed' },
      { action: 'password.changed', ...api(bob.id, MOBILE_NET), target_id: bob.id, group_id: null, detail: 'changed' },
      { action: 'sessions.revoked', ...api(alice.id, HOME_NET), target_id: alice.id, group_id: null, detail: 'others' },
      // The last member's deletion takes the orbit along (one transaction, one time).
      { action: 'account.deleted', ...api(bob.id, MOBILE_NET), target_id: bob.id, group_id: null, detail: null },
      { action: 'orbit.deleted', ...api(bob.id, MOBILE_NET), target_id: bob.id, group_id: orbit, detail: 'last_member_deleted' },
    ]);
    const stored = JSON.stringify(await t.sql('select * from audit_events'));
    for (const secret of [alice.username, bob.username, alice.password, bob.password, 'another long password', created.invite.code, extra.code, created.group.encrypted_name]) {
      expect(stored).not.toContain(secret);
    }
  });

  it('notes a password lockout once per window, however many attempts it refuses', async () => {
    const carol = await registerUser(t);
    const login = () => t.fetch('/api/auth/login', { ...post({ username: carol.username, password: 'not the password at all' }), ip: HOME });
    const statuses: number[] = [];
    for (let i = 0; i < 13; i++) statuses.push((await login()).status);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(2);
    const lockouts = (await trail([carol.id])).filter((r) => r.action === 'rate_limit.lockout');
    expect(lockouts.map(({ at: _, ...r }) => r)).toEqual([
      { action: 'rate_limit.lockout', via: 'api', actor_id: null, target_id: carol.id, group_id: null, detail: 'passwordUserIp', address: HOME_NET },
    ]);
  });

  it('notes a lockout once when many refused attempts arrive at the same moment', async () => {
    const erin = await registerUser(t);
    const login = () => t.fetch('/api/auth/login', { ...post({ username: erin.username, password: 'not the password at all' }), ip: HOME });
    for (let round = 0; round < 2; round++) {
      const statuses = await Promise.all(Array.from({ length: 20 }, login));
      expect(statuses.filter((r) => r.status === 429).length).toBeGreaterThan(0);
    }
    const lockouts = (await trail([erin.id])).filter((r) => r.action === 'rate_limit.lockout');
    expect(lockouts).toHaveLength(1);
  });

  it('keeps rows AUDIT_RETENTION_DAYS (90 by default): the cleanup removes older ones only', async () => {
    const dave = await registerUser(t);
    await t.sql(
      `insert into audit_events (action, via, actor_id, target_id, at) values
       ('sessions.revoked', 'admin', null, $1, now() - interval '91 days'), ('sessions.revoked', 'admin', null, $1, now() - interval '89 days')`,
      [dave.id],
    );
    await t.cleanup();
    const left = await trail([dave.id]);
    expect(left.map((r) => r.action).sort()).toEqual(['account.created', 'sessions.revoked']);
    expect(Date.now() - new Date(left.find((r) => r.action === 'sessions.revoked')!.at).getTime()).toBeLessThan(90 * 86_400_000);
  });

  it('an invalid action is refused whole: no row without its action', async () => {
    const erin = await registerUser(t, { ip: HOME });
    // Not a member of any orbit with this id: 404, and nothing recorded.
    await expectError(await call('/api/groups/00000000-0000-4000-8000-000000000000/invites', erin, HOME), 404, 'NOT_FOUND');
    expect((await trail([erin.id])).map((r) => r.action)).toEqual(['account.created']);
  });
});
