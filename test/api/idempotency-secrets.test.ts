// The Idempotency-Key table keeps no secret and no content: an invite code never lands there, a
// replay shows the invite without it, and content deleted since a create is gone from the table
// too — a replay of its create answers 404 as a read of it would, never the old ciphertext.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, b64, createOrbit, expectError, expectStatus, json, post, registerUser } from '../support/api';
import { newThread } from '../support/content';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const key = () => `k-${crypto.randomUUID()}`;

/** Everything the idempotency table holds for a user, as text. */
async function stored(userId: string): Promise<string> {
  const rows = await t.sql<{ row: string }>(`select row_to_json(i)::text as row from idempotency_keys i where user_id = $1`, [userId]);
  expect(rows.length).toBeGreaterThan(0);
  return rows.map((r) => r.row).join('\n');
}

describe('invite codes and the idempotency store', () => {
  it('creating an orbit: the code is answered once, never stored; a replay shows the invite without it', async () => {
    const owner = await registerUser(t);
    const k = key();
    const body = { encrypted_name: b64(24), encrypted_group_key: b64(256) };
    const first = await json(await expectStatus(await t.fetch('/api/groups', post(body, { ...owner.auth, 'idempotency-key': k })), 201));
    expect(first.invite.code).toMatch(/^[A-Za-z0-9]{8}$/);
    expect(await stored(owner.id)).not.toContain(first.invite.code);

    // Concurrent replays: each is the orbit as it is now, none carries the code.
    const replays = await Promise.all(Array.from({ length: 5 }, () => t.fetch('/api/groups', post(body, { ...owner.auth, 'idempotency-key': k }))));
    for (const res of replays) {
      const replay = await json(await expectStatus(res, 201));
      expect(res.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.group.id).toBe(first.group.id);
      expect(replay.invite).toMatchObject({ id: first.invite.id, code: null, code_hint: first.invite.code.slice(0, 2), uses: 0 });
    }
    // The code still works for whoever was given it.
    const guest = await registerUser(t);
    await expectStatus(await t.fetch('/api/groups/join', post({ invite_code: first.invite.code }, guest.auth)), 200);
  });

  it('creating an invite: the same, and the replay shows its uses as they are now', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const k = key();
    const send = () => t.fetch(`/api/groups/${orbit.id}/invites`, post({ max_uses: 2 }, { ...owner.auth, 'idempotency-key': k }));
    const first = await json(await expectStatus(await send(), 201));
    expect(await stored(owner.id)).not.toContain(first.code);
    await expectStatus(await t.fetch('/api/groups/join', post({ invite_code: first.code }, (await registerUser(t)).auth)), 200);
    const replay = await json(await expectStatus(await send(), 201));
    expect(replay).toMatchObject({ id: first.id, code: null, uses: 1, max_uses: 2 });

    // Revoked since: the retry answers as the revoked invite is, gone.
    await expectStatus(await t.fetch(`/api/groups/${orbit.id}/invites/${first.id}`, { method: 'DELETE', headers: owner.auth }), 204);
    await expectError(await send(), 404, 'NOT_FOUND');
  });
});

describe('deleted content and the idempotency store', () => {
  it('a deleted thread does not come back through a replay, and its ciphertext is not kept', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const k = key();
    const body = { group_id: orbit.id, key_epoch: 1, encrypted_title: b64(40), encrypted_body: b64(300) };
    const thread = await json(await expectStatus(await t.fetch('/api/threads', post(body, { ...owner.auth, 'idempotency-key': k })), 201));
    expect(await stored(owner.id)).not.toContain(body.encrypted_body);
    await expectStatus(await t.fetch(`/api/threads/${thread.id}`, { method: 'DELETE', headers: owner.auth }), 204);

    // Concurrent replays after the deletion: each answers as reading the thread would.
    const replays = await Promise.all(Array.from({ length: 5 }, () => t.fetch('/api/threads', post(body, { ...owner.auth, 'idempotency-key': k }))));
    for (const res of replays) await expectError(res, 404, 'NOT_FOUND');
    expect(await t.sql('select id from threads where group_id = $1', [orbit.id])).toEqual([]);
    const all = await stored(owner.id);
    expect(all).not.toContain(body.encrypted_body);
    expect(all).not.toContain(body.encrypted_title);
  });

  it('a deleted reply replays as its tombstone; a reply of a deleted thread as 404', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const thread = await newThread(t, owner, orbit.id);
    const k = key();
    const body = { key_epoch: 1, encrypted_body: b64(200) };
    const send = () => t.fetch(`/api/threads/${thread.id}/replies`, post(body, { ...member.auth, 'idempotency-key': k }));
    const reply = await json(await expectStatus(await send(), 201));
    expect(await stored(member.id)).not.toContain(body.encrypted_body);
    await expectStatus(await t.fetch(`/api/replies/${reply.id}`, { method: 'DELETE', headers: member.auth }), 204);
    const tomb = await json(await expectStatus(await send(), 201));
    expect(tomb).toMatchObject({ id: reply.id, deleted: true, encrypted_body: null });
    await expectStatus(await t.fetch(`/api/threads/${thread.id}`, { method: 'DELETE', headers: owner.auth }), 204);
    await expectError(await send(), 404, 'NOT_FOUND');
  });

  it('an orbit deleted since its creation replays as 404', async () => {
    const owner = await registerUser(t);
    const k = key();
    const body = { encrypted_name: b64(24), encrypted_group_key: b64(256) };
    const send = () => t.fetch('/api/groups', post(body, { ...owner.auth, 'idempotency-key': k }));
    const first = await json(await expectStatus(await send(), 201));
    // The last member leaving deletes the orbit.
    await expectStatus(await t.fetch(`/api/groups/${first.group.id}/members/${owner.id}`, { method: 'DELETE', headers: owner.auth }), 204);
    await expectError(await send(), 404, 'NOT_FOUND');
    expect(await stored(owner.id)).not.toContain(body.encrypted_group_key);
  });
});
