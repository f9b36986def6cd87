// The live socket on both runtimes: who may open it (before the upgrade), what it replays, and
// that every socket sees each committed event once, in seq order, with no gap.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, bearer, createInvite, createOrbit, deliverKey, expectError, json, joinOrbit, post, registerUser } from '../support/api';
import { expectRefused, insertThread, livePath, openLive, seqsUntil, writeEvents } from '../support/live';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

async function ticketFor(user: { auth: Record<string, string> }, groupId: string) {
  const res = await t.fetch(`/api/groups/${groupId}/live/ticket`, { method: 'POST', headers: user.auth });
  expect(res.status).toBe(200);
  return json(res);
}

describe('opening the live socket', () => {
  it('refuses before the upgrade: no credentials 401, a bad token 401, a non-member 404, an unknown orbit 404', async () => {
    const owner = await registerUser(t);
    const stranger = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await expectRefused(t.socket(livePath(orbit.id)), 401, 'UNAUTHENTICATED');
    await expectRefused(t.socket(livePath(orbit.id), bearer('not-a-token')), 401, 'UNAUTHENTICATED');
    await expectRefused(t.socket(livePath(orbit.id), stranger.auth), 404, 'NOT_FOUND');
    await expectRefused(t.socket(livePath(crypto.randomUUID()), owner.auth), 404, 'NOT_FOUND');
    await expectRefused(t.socket(livePath(orbit.id, { after_seq: -1 }), owner.auth), 400, 'VALIDATION_ERROR');
  });

  it('answers a plain GET (no upgrade) with 400 after checking who asks', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await expectError(await t.fetch(livePath(orbit.id)), 401, 'UNAUTHENTICATED');
    await expectError(await t.fetch(livePath(orbit.id), { headers: owner.auth }), 400, 'VALIDATION_ERROR');
  });

  it('a ticket opens one socket once, for its own orbit only, and only while fresh', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const other = await createOrbit(t, owner);
    const issued = await ticketFor(owner, orbit.id);
    expect(issued).toEqual({ ticket: expect.any(String), expires_in: 30 });

    // Bound to its orbit: refused elsewhere, and not used up by the attempt.
    await expectRefused(t.socket(livePath(other.id, { ticket: issued.ticket })), 401, 'UNAUTHENTICATED');
    const { socket, ready } = await openLive(t, livePath(orbit.id, { ticket: issued.ticket }));
    expect(ready).toBe(0);
    socket.close();
    await expectRefused(t.socket(livePath(orbit.id, { ticket: issued.ticket })), 401, 'UNAUTHENTICATED');

    // A plain GET does not use a ticket up.
    const kept = await ticketFor(owner, orbit.id);
    await expectError(await t.fetch(livePath(orbit.id, { ticket: kept.ticket })), 400, 'VALIDATION_ERROR');
    (await openLive(t, livePath(orbit.id, { ticket: kept.ticket }))).socket.close();

    const stale = await ticketFor(owner, orbit.id);
    await t.sql(`update live_tickets set expires_at = now() - interval '1 second' where used_at is null and group_id = $1`, [orbit.id]);
    await expectRefused(t.socket(livePath(orbit.id, { ticket: stale.ticket })), 401, 'UNAUTHENTICATED');

    // Stored hashed, never as issued.
    const rows = await t.sql<{ n: string }>(`select count(*) as n from live_tickets where group_id = $1 and encode(ticket_hash, 'escape') like $2`, [orbit.id, `%${issued.ticket}%`]);
    expect(Number(rows[0]!.n)).toBe(0);
  });

  it('tickets are for members only', async () => {
    const owner = await registerUser(t);
    const stranger = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await expectError(await t.fetch(`/api/groups/${orbit.id}/live/ticket`, { method: 'POST', headers: stranger.auth }), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/groups/${orbit.id}/live/ticket`, { method: 'POST' }), 401, 'UNAUTHENTICATED');
  });

  it('allows 5 sockets per user per orbit; the 6th is 429 until one closes', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const open = [];
    for (let i = 0; i < 5; i++) open.push((await openLive(t, livePath(orbit.id), owner.auth)).socket);
    const refused = await expectRefused(t.socket(livePath(orbit.id), owner.auth), 429, 'RATE_LIMITED');
    expect(refused.details).toEqual({ max_sockets: 5 });
    open[0]!.close();
    await open[0]!.closed;
    let reopened;
    for (let attempt = 0; attempt < 50 && !reopened; attempt++) {
      reopened = await openLive(t, livePath(orbit.id), owner.auth).catch(() => undefined);
      if (!reopened) await new Promise((r) => setTimeout(r, 100));
    }
    expect(reopened?.ready).toBe(0);
    for (const s of [...open.slice(1), reopened!.socket]) s.close();
  });

  it('a place is free again once the client has seen its socket close: 10 rounds of close one, open one at once, none refused', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const open = [];
    for (let i = 0; i < 5; i++) open.push((await openLive(t, livePath(orbit.id), owner.auth)).socket);
    const refusals: number[] = [];
    for (let round = 0; round < 10; round++) {
      const leaving = open.shift()!;
      leaving.close();
      await leaving.closed;
      const next = await openLive(t, livePath(orbit.id), owner.auth).catch((err) => err);
      if (next.socket) open.push(next.socket);
      else refusals.push(next.status ?? String(next));
    }
    expect(refusals).toEqual([]);
    for (const s of open) s.close();
  });

  it('holds the cap under concurrency: of 7 simultaneous upgrades 5 open and 2 get 429', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const results = await Promise.allSettled(Array.from({ length: 7 }, () => t.socket(livePath(orbit.id), owner.auth)));
    const opened = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason.status);
    expect([opened.length, refused]).toEqual([5, [429, 429]]);
    for (const r of opened) (r as PromiseFulfilledResult<{ close(): void }>).value.close();
  });

  it('ignores an identity a client puts in the internal header', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const forged = JSON.stringify({ groupId: orbit.id, userId: owner.id, sessionId: crypto.randomUUID(), tokenExpiresAt: 2e9, joinedAt: 0, afterSeq: null });
    await expectRefused(t.socket(livePath(orbit.id), { 'x-orbital-live-identity': forged, 'x-orbit-id': orbit.id }), 401, 'UNAUTHENTICATED');
  });

  it('a pending member (no key yet) may listen', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const pending = await registerUser(t);
    await joinOrbit(t, pending, await createInvite(t, owner, orbit.id));
    const { socket, ready } = await openLive(t, livePath(orbit.id), pending.auth);
    expect(ready).toBe(1);
    await deliverKey(t, owner, orbit.id, pending.id);
    const event = await socket.next();
    expect(event).toMatchObject({ type: 'member_key_delivered', group_id: orbit.id, seq: 2, actor_id: owner.id, data: { user_id: pending.id, key_epochs: [1] } });
    expect(typeof event.at).toBe('string');
    socket.close();
  });
});

describe('events on the socket', () => {
  it('reaches every member socket, the actor included', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const a = await openLive(t, livePath(orbit.id), owner.auth);
    const b = await openLive(t, livePath(orbit.id), member.auth);
    expect([a.ready, b.ready]).toEqual([2, 2]);
    const late = await registerUser(t);
    await joinOrbit(t, late, await createInvite(t, owner, orbit.id));
    for (const s of [a.socket, b.socket]) {
      expect(await s.next()).toMatchObject({ type: 'member_joined', seq: 3, actor_id: late.id, data: { user_id: late.id, username: late.username } });
    }
    a.socket.close();
    b.socket.close();
  });

  it('after_seq replays the missed events, then ready, then live events', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await writeEvents(t, orbit.id, owner.id, 12, { perTx: 4 });
    const { socket, before, ready } = await openLive(t, livePath(orbit.id, { after_seq: 5 }), owner.auth);
    expect(before.map((e) => e.seq)).toEqual([6, 7, 8, 9, 10, 11, 12]);
    expect(before[0]).toMatchObject({ type: 'group_updated', group_id: orbit.id, data: { i: 5 } });
    expect(ready).toBe(12);
    await writeEvents(t, orbit.id, owner.id, 1);
    expect(await seqsUntil(socket, 13)).toEqual([13]);
    socket.close();

    const current = await openLive(t, livePath(orbit.id, { after_seq: 13 }), owner.auth);
    expect([current.before, current.ready]).toEqual([[], 13]);
    current.socket.close();
  });

  it('more than 1,000 missed events answer resync_required, and the socket goes on', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await writeEvents(t, orbit.id, owner.id, 1002, { perTx: 501 });
    const far = await openLive(t, livePath(orbit.id, { after_seq: 1 }), owner.auth);
    expect(far.before).toEqual([{ type: 'resync_required', seq: 1002 }]);
    expect(far.ready).toBe(1002);
    const near = await openLive(t, livePath(orbit.id, { after_seq: 2 }), owner.auth);
    expect(near.before.map((e) => e.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 3));
    // A resume point the orbit never reached cannot be trusted either.
    const future = await openLive(t, livePath(orbit.id, { after_seq: 5000 }), owner.auth);
    expect(future.before).toEqual([{ type: 'resync_required', seq: 1002 }]);
    await writeEvents(t, orbit.id, owner.id, 1);
    for (const s of [far.socket, near.socket, future.socket]) {
      expect(await seqsUntil(s, 1003)).toEqual([1003]);
      s.close();
    }
  });

  it('more than 8 MiB missed answers resync_required', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const blob = 'x'.repeat(200 * 1024);
    await writeEvents(t, orbit.id, owner.id, 44, { perTx: 11, data: (i) => ({ i, blob }) });
    const big = await openLive(t, livePath(orbit.id, { after_seq: 0 }), owner.auth);
    expect(big.before).toEqual([{ type: 'resync_required', seq: 44 }]);
    big.socket.close();
    const fits = await openLive(t, livePath(orbit.id, { after_seq: 10 }), owner.auth);
    expect(fits.before.map((e) => e.seq)).toEqual(Array.from({ length: 34 }, (_, i) => i + 11));
    fits.socket.close();
  });
});

describe('client frames', () => {
  it('ping (exact bytes) gets pong; anything malformed gets an error frame and the socket stays', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const { socket } = await openLive(t, livePath(orbit.id), owner.auth);
    socket.send('{"type":"ping"}');
    expect(await socket.next()).toEqual({ type: 'pong' });
    for (const bad of ['not json', '[1]', '{"type":"nope"}', '{"type": "ping"}', '{"type":"typing","thread_id":"x"}', '{"type":"auth"}']) {
      socket.send(bad);
      expect(await socket.next()).toMatchObject({ type: 'error', code: 'VALIDATION_ERROR', message: expect.any(String) });
    }
    socket.send('{"type":"ping"}');
    expect(await socket.next()).toEqual({ type: 'pong' });
    socket.close();
  });

  it('a frame over 64 KiB closes 1009', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const { socket } = await openLive(t, livePath(orbit.id), owner.auth);
    socket.send(JSON.stringify({ type: 'typing', thread_id: 'x'.repeat(64 * 1024) }));
    expect((await socket.closed).code).toBe(1009);
  });

  it('more than 20 frames in 10 s close 1008', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const { socket } = await openLive(t, livePath(orbit.id), owner.auth);
    for (let i = 0; i < 21; i++) socket.send('{"type":"hello"}');
    expect((await socket.closed).code).toBe(1008);
    expect(socket.buffered.filter((f: any) => f.type === 'error')).toHaveLength(20);
  });

  it('typing for a thread of the orbit reaches the other members, at most once per 2 s, never stored', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const threadId = await insertThread(t, orbit.id, owner.id);
    const a = await openLive(t, livePath(orbit.id), owner.auth);
    const b = await openLive(t, livePath(orbit.id), member.auth);
    a.socket.send(JSON.stringify({ type: 'typing', thread_id: threadId }));
    a.socket.send(JSON.stringify({ type: 'typing', thread_id: threadId }));
    expect(await b.socket.next()).toEqual({ type: 'typing', user_id: owner.id, thread_id: threadId });
    b.socket.send(JSON.stringify({ type: 'typing', thread_id: crypto.randomUUID() }));
    expect(await b.socket.next()).toMatchObject({ type: 'error', code: 'NOT_FOUND' });
    // An event written afterwards arrives next: the second typing frame was dropped, none echoed to the sender.
    await writeEvents(t, orbit.id, owner.id, 1);
    expect(await b.socket.next()).toMatchObject({ seq: 3 });
    expect(await a.socket.next()).toMatchObject({ seq: 3 });
    const stored = await t.sql<{ n: string }>('select count(*) as n from orbit_events where group_id = $1', [orbit.id]);
    expect(Number(stored[0]!.n)).toBe(3);
    a.socket.close();
    b.socket.close();
  });
});
