// Idempotency-Key on every creating POST: one key from one user on one route creates one thing,
// however many copies arrive at once; a retry returns the resource as it is now.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, b64, createOrbit, expectError, expectStatus, json, post, registerUser, type TestUser } from '../support/api';
import { allEvents, newReply, newThread } from '../support/content';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const key = () => `k-${crypto.randomUUID()}`;

/**
 * Sends the same keyed request 10 times at once. Every answer is the created resource (the first
 * or a replay) or 409 for a copy that arrived while the first was still running; then a retry
 * returns the first outcome.
 */
async function burst(path: string, body: unknown, user: TestUser, idKey: string, idOf: (body: any) => string) {
  const responses = await Promise.all(Array.from({ length: 10 }, () => t.fetch(path, post(body, { ...user.auth, 'idempotency-key': idKey }))));
  const bodies = await Promise.all(responses.map((r) => json(r)));
  const statuses = responses.map((r) => r.status);
  expect(statuses.every((s) => s === 201 || s === 409), JSON.stringify(statuses)).toBe(true);
  for (const [i, b] of bodies.entries()) if (statuses[i] === 409) expect(b.error.code).toBe('CONFLICT');
  const created = bodies.filter((_, i) => statuses[i] === 201).map(idOf);
  expect(created.length).toBeGreaterThan(0);
  expect(new Set(created).size).toBe(1);
  const retry = await t.fetch(path, post(body, { ...user.auth, 'idempotency-key': idKey }));
  await expectStatus(retry, 201);
  expect(retry.headers.get('idempotent-replayed')).toBe('true');
  const replay = await json(retry);
  expect(idOf(replay)).toBe(created[0]);
  return { id: created[0]!, replay };
}

describe('Idempotency-Key', () => {
  it('threads: ten copies at once create one thread and one event; a retry shows it as it is now', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const body = { group_id: orbit.id, key_epoch: 1, encrypted_title: b64(20), encrypted_body: b64(50) };
    const k = key();
    const { id } = await burst('/api/threads', body, owner, k, (b) => b.id);
    expect(await t.sql('select id from threads where group_id = $1', [orbit.id])).toEqual([{ id }]);
    const created = (await allEvents(t, owner, orbit.id)).filter((e) => e.type === 'thread_created');
    expect(created.map((e) => e.data.id)).toEqual([id]);

    await newReply(t, owner, id);
    const later = await t.fetch('/api/threads', post(body, { ...owner.auth, 'idempotency-key': k }));
    expect(await json(later)).toMatchObject({ id, reply_count: 1 });

    const other = await t.fetch('/api/threads', post({ ...body, encrypted_title: b64(20) }, { ...owner.auth, 'idempotency-key': k }));
    await expectError(other, 409, 'CONFLICT');
    // The same key is the caller's own: another member using it creates their own thread.
    const member = await addMember(t, owner, orbit);
    const theirs = await json(await t.fetch('/api/threads', post(body, { ...member.auth, 'idempotency-key': k })));
    expect(theirs.id).not.toBe(id);
  });

  it('replies: one reply per key and route; the same key on another thread is another request', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const thread = await newThread(t, owner, orbit.id);
    const body = { key_epoch: 1, encrypted_body: b64(40) };
    const k = key();
    const { id } = await burst(`/api/threads/${thread.id}/replies`, body, owner, k, (b) => b.id);
    expect(await t.sql('select id from replies where thread_id = $1', [thread.id])).toEqual([{ id }]);
    const after = await t.fetch(`/api/threads/${thread.id}`, { headers: owner.auth });
    expect((await json(after)).reply_count).toBe(1);
    const second = await newThread(t, owner, orbit.id);
    const elsewhere = await t.fetch(`/api/threads/${second.id}/replies`, post(body, { ...owner.auth, 'idempotency-key': k }));
    await expectStatus(elsewhere, 201);
    expect((await json(elsewhere)).id).not.toBe(id);
  });

  it('messages: one message per key', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const k = key();
    const { id, replay } = await burst(`/api/groups/${orbit.id}/messages`, { envelope: b64(30) }, owner, k, (b) => b.id);
    expect(Object.keys(replay).sort()).toEqual(['id', 'seq', 'server_timestamp']);
    expect(await t.sql('select id from signal_messages where group_id = $1', [orbit.id])).toEqual([{ id }]);
  });

  it('the same request naming the orbit in upper case is a retry, not a second message', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const headers = { ...owner.auth, 'idempotency-key': key() };
    const body = { envelope: b64(30) };
    const first = await json(await expectStatus(await t.fetch(`/api/groups/${orbit.id}/messages`, post(body, headers)), 201));
    const retry = await expectStatus(await t.fetch(`/api/groups/${orbit.id.toUpperCase()}/messages`, post(body, headers)), 201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect((await json(retry)).id).toBe(first.id);
    expect(await t.sql('select id from signal_messages where group_id = $1', [orbit.id])).toEqual([{ id: first.id }]);
  });

  it('orbits: one orbit per key', async () => {
    const owner = await registerUser(t);
    const body = { encrypted_name: b64(24), encrypted_group_key: b64(256) };
    const { id } = await burst('/api/groups', body, owner, key(), (b) => b.group.id);
    expect(await t.sql('select id from groups where owner_id = $1', [owner.id])).toEqual([{ id }]);
  });

  it('invites: one invite per key', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const { id } = await burst(`/api/groups/${orbit.id}/invites`, { max_uses: 3 }, owner, key(), (b) => b.id);
    const rows = await t.sql<{ id: string }>('select id from invites where group_id = $1 and max_uses = 3', [orbit.id]);
    expect(rows).toEqual([{ id }]);
  });

  it('a failed first attempt frees the key; malformed keys are 400', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const k = key();
    const bad = await t.fetch('/api/threads', post({ group_id: orbit.id, key_epoch: 9, encrypted_title: b64(8), encrypted_body: b64(8) }, { ...owner.auth, 'idempotency-key': k }));
    await expectError(bad, 400, 'VALIDATION_ERROR');
    const good = await t.fetch('/api/threads', post({ group_id: orbit.id, key_epoch: 1, encrypted_title: b64(8), encrypted_body: b64(8) }, { ...owner.auth, 'idempotency-key': k }));
    await expectStatus(good, 201);
    for (const badKey of ['x'.repeat(65), 'has space']) {
      const res = await t.fetch(`/api/groups/${orbit.id}/messages`, post({ envelope: b64(8) }, { ...owner.auth, 'idempotency-key': badKey }));
      await expectError(res, 400, 'VALIDATION_ERROR');
    }
    expect(await t.sql('select id from signal_messages where group_id = $1', [orbit.id])).toEqual([]);
  });
});
