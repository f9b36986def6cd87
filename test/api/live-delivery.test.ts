// Live delivery on both runtimes: order without gaps under concurrent writers and out-of-order
// notifications, per-recipient envelopes, and the ways a socket ends (removal, expiry, logout).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { appendEvent } from '../../src/domain/events';
import { removeMember, type LeaveReason } from '../../src/domain/membership';
import { signAccessToken } from '../../src/domain/tokens';
import { write } from '../../src/domain/tx';
import { addMember, bearer, createOrbit, post, registerUser, type TestUser } from '../support/api';
import { livePath, openLive, range, readUntil, seqsUntil, writeEvents } from '../support/live';
import type { Target } from '../support/types';
import { byUser } from '../../src/domain/audit/record';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const sessionOf = (user: TestUser) => JSON.parse(Buffer.from(user.access.split('.')[1]!, 'base64url').toString()).sid as string;

/** An access token of the user's session that expires in `seconds`. */
async function shortToken(user: TestUser, seconds: number) {
  const secret = new TextEncoder().encode(t.env.JWT_SECRET);
  return signAccessToken(secret, user.id, sessionOf(user), new Date(Date.now() - (15 * 60 - seconds) * 1000));
}

function remove(groupId: string, userId: string, actorId: string, reason: LeaveReason) {
  return t.withDeps((deps) =>
    write(deps, async (tx, outbox) => {
      const result = await removeMember(tx, { groupId, userId, actorId, reason, now: new Date(), by: byUser(actorId, null) });
      outbox.add(...result.events);
      return result;
    }),
  );
}

describe('ordering', () => {
  it('an orbit id in upper case names the same orbit: its socket gets the events, REST answers carry the id as stored', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const upper = orbit.id.toUpperCase();
    const { socket } = await openLive(t, livePath(upper), owner.auth);
    await writeEvents(t, orbit.id, owner.id, 2);
    expect(await seqsUntil(socket, 2)).toEqual([1, 2]);
    const got = await t.fetch(`/api/groups/${upper}`, { headers: owner.auth });
    expect(got.status).toBe(200);
    expect((await got.json()).id).toBe(orbit.id);
    socket.close();
  });

  it('500 events from 10 concurrent writers reach 3 sockets as seq 1..500 exactly, one of them reconnecting midway', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const steady = [await openLive(t, livePath(orbit.id), owner.auth), await openLive(t, livePath(orbit.id), owner.auth)];
    const mover = await openLive(t, livePath(orbit.id), owner.auth);
    expect([...steady, mover].map((s) => s.ready)).toEqual([0, 0, 0]);

    const writers = Promise.all(range(1, 10).map(() => writeEvents(t, orbit.id, owner.id, 50)));

    // The third socket leaves after at least 150 events and resumes from what it saw.
    const first = await seqsUntil(mover.socket, 150);
    mover.socket.close();
    const resumed = await openLive(t, livePath(orbit.id, { after_seq: first[first.length - 1]! }), owner.auth);
    const replayed = resumed.before.map((e) => e.seq);
    expect(resumed.ready).toBe(first[first.length - 1]! + replayed.length);
    const rest = resumed.ready < 500 ? await seqsUntil(resumed.socket, 500) : [];
    await writers;

    expect([...first, ...replayed, ...rest]).toEqual(range(1, 500));
    for (const s of steady) expect(await seqsUntil(s.socket, 500)).toEqual(range(1, 500));
    for (const s of [...steady, resumed]) s.socket.close();
  });

  it('an event notified before the ones under it arrives after them, filled in from the log; late and repeated notices are dropped', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const { socket } = await openLive(t, livePath(orbit.id), owner.auth);
    await t.withDeps(async (deps) => {
      // Committed but not yet announced, as when another writer's notification is slower.
      const events = await deps.db.transaction(async (tx) => [
        await appendEvent(tx, { groupId: orbit.id, type: 'group_updated', actorId: owner.id, data: { n: 1 } }),
        await appendEvent(tx, { groupId: orbit.id, type: 'group_updated', actorId: owner.id, data: { n: 2 } }),
        await appendEvent(tx, { groupId: orbit.id, type: 'group_updated', actorId: owner.id, data: { n: 3 } }),
      ]);
      await deps.fanout.publish(orbit.id, [events[2]!]);
      await deps.fanout.publish(orbit.id, [events[1]!, events[0]!]);
      await deps.fanout.publish(orbit.id, [events[2]!]);
    });
    await writeEvents(t, orbit.id, owner.id, 1, { data: () => ({ n: 4 }) });
    const frames = await readUntil(socket, (f) => f.seq === 4);
    expect(frames.map((f) => [f.seq, f.data.n])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ]);
    socket.close();
  });

  it('a private part reaches only its recipient; the others get the event without it', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const a = await openLive(t, livePath(orbit.id), owner.auth);
    const b = await openLive(t, livePath(orbit.id), member.auth);
    await t.withDeps((deps) =>
      write(deps, async (tx, outbox) => {
        outbox.add(
          await appendEvent(tx, {
            groupId: orbit.id,
            type: 'message_created',
            actorId: owner.id,
            data: { id: 'm1', sender_id: owner.id },
            private: { [member.id]: { envelope: 'Zm9y' } },
          }),
        );
      }),
    );
    expect((await a.socket.next()).data).toEqual({ id: 'm1', sender_id: owner.id });
    expect((await b.socket.next()).data).toEqual({ id: 'm1', sender_id: owner.id, envelope: 'Zm9y' });
    a.socket.close();
    b.socket.close();
  });
});

describe('how a socket ends', () => {
  it('removal delivers member_left to the member, then closes its sockets 4403 before any later event', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const watcher = await openLive(t, livePath(orbit.id), owner.auth);
    const phone = await openLive(t, livePath(orbit.id), member.auth);
    const laptop = await openLive(t, livePath(orbit.id), member.auth);

    await remove(orbit.id, member.id, owner.id, 'removed');
    await writeEvents(t, orbit.id, owner.id, 1);

    for (const s of [phone, laptop]) {
      expect(await s.socket.next()).toMatchObject({ type: 'member_left', seq: 3, data: { user_id: member.id, reason: 'removed' } });
      expect((await s.socket.closed).code).toBe(4403);
      expect(s.socket.buffered).toEqual([]);
    }
    expect((await readUntil(watcher.socket, (f) => f.seq === 4)).map((f) => f.type)).toEqual(['member_left', 'group_updated']);
    watcher.socket.close();
  });

  it("a deleted account's sockets get its member_left, then close 4401", async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const s = await openLive(t, livePath(orbit.id), member.auth);
    await remove(orbit.id, member.id, member.id, 'deleted');
    expect(await s.socket.next()).toMatchObject({ type: 'member_left', data: { user_id: member.id, reason: 'deleted' } });
    expect((await s.socket.closed).code).toBe(4401);
  });

  it('the last member leaving deletes the orbit: its sockets get the farewell and close 4403', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const s = await openLive(t, livePath(orbit.id), owner.auth);
    await remove(orbit.id, owner.id, owner.id, 'left');
    expect(await s.socket.next()).toMatchObject({ type: 'member_left', seq: 1, data: { user_id: owner.id, group_deleted: true } });
    expect((await s.socket.closed).code).toBe(4403);
  });

  it('a session ended (logout, revocation) closes its sockets 4401 at the next liveness check, and only those', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const login = await t.fetch('/api/auth/login', post({ username: owner.username, password: owner.password }));
    const second = await login.json();
    const kept = await openLive(t, livePath(orbit.id), owner.auth);
    const ended = await openLive(t, livePath(orbit.id), bearer(second.access_token));
    // What logout and session revocation do to the session row.
    await t.sql('update sessions set revoked_at = now() where id = $1', [sessionOf({ access: second.access_token } as TestUser)]);
    await t.runLiveChecks(orbit.id);
    expect((await ended.socket.closed).code).toBe(4401);
    kept.socket.send('{"type":"ping"}');
    expect(await kept.socket.next()).toEqual({ type: 'pong' });
    kept.socket.close();
  });

  it('a socket closes 4401 when its token expires, unless an auth frame renewed it', async () => {
    const owner = await registerUser(t);
    const other = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const expiring = await openLive(t, livePath(orbit.id), bearer(await shortToken(owner, 3)));
    const renewed = await openLive(t, livePath(orbit.id), bearer(await shortToken(owner, 3)));

    renewed.socket.send(JSON.stringify({ type: 'auth', access_token: other.access }));
    expect(await renewed.socket.next()).toMatchObject({ type: 'error', code: 'UNAUTHENTICATED' });
    renewed.socket.send(JSON.stringify({ type: 'auth', access_token: 'nonsense' }));
    expect(await renewed.socket.next()).toMatchObject({ type: 'error', code: 'UNAUTHENTICATED' });
    renewed.socket.send(JSON.stringify({ type: 'auth', access_token: owner.access }));
    expect(await renewed.socket.next()).toMatchObject({ type: 'authorized', expires_at: expect.any(String) });

    expect((await expiring.socket.closed).code).toBe(4401);
    renewed.socket.send('{"type":"ping"}');
    expect(await renewed.socket.next()).toEqual({ type: 'pong' });
    await writeEvents(t, orbit.id, owner.id, 1);
    expect(await seqsUntil(renewed.socket, 1)).toEqual([1]);
    renewed.socket.close();
  });
});
