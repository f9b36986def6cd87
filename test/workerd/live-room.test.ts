// The orbit's Durable Object through the Worker: sockets survive hibernation with their order,
// and pings are answered by the runtime without waking the object.
import { env, evictDurableObject, runInDurableObject } from 'cloudflare:test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { roomStub } from '../../src/adapters/fanout-do';
import type { WorkerEnv } from '../../src/runtime/worker-deps';
import { createOrbit, registerUser } from '../support/api';
import { livePath, openLive, seqsUntil, writeEvents } from '../support/live';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const stubOf = (groupId: string) => roomStub((env as unknown as WorkerEnv).ORBIT_ROOM, groupId);

describe('orbit room (Durable Object)', () => {
  it('keeps sockets and their positions across eviction', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const early = await openLive(t, livePath(orbit.id), owner.auth);
    await writeEvents(t, orbit.id, owner.id, 2);
    expect(await seqsUntil(early.socket, 2)).toEqual([1, 2]);
    const late = await openLive(t, livePath(orbit.id, { after_seq: 1 }), owner.auth);
    expect(late.before.map((e) => e.seq)).toEqual([2]);

    await evictDurableObject(stubOf(orbit.id));
    // Nothing in memory survived; the attachments did.
    await writeEvents(t, orbit.id, owner.id, 1);
    expect(await seqsUntil(early.socket, 3)).toEqual([3]);
    expect(await seqsUntil(late.socket, 3)).toEqual([3]);

    await evictDurableObject(stubOf(orbit.id));
    early.socket.send('{"type":"nope"}');
    expect(await early.socket.next()).toMatchObject({ type: 'error', code: 'VALIDATION_ERROR' });
    early.socket.close();
    late.socket.close();
  });

  it('answers ping with pong from the runtime, without running the object', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const { socket } = await openLive(t, livePath(orbit.id), owner.auth);
    await evictDurableObject(stubOf(orbit.id));
    socket.send('{"type":"ping"}');
    expect(await socket.next()).toEqual({ type: 'pong' });
    const seen = await runInDurableObject(stubOf(orbit.id), (room: any, state: any) => ({
      autoAnswered: state.getWebSockets().map((ws: unknown) => state.getWebSocketAutoResponseTimestamp(ws) !== null),
      // The object's own message handler never ran since the eviction (it would have built its room).
      woken: room.room !== undefined,
    }));
    expect(seen).toEqual({ autoAnswered: [true], woken: false });
    socket.close();
  });

  it('counts a user\'s sockets in the room', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const sockets = [await openLive(t, livePath(orbit.id), owner.auth), await openLive(t, livePath(orbit.id), owner.auth)];
    const res = await stubOf(orbit.id).fetch(`https://orbit-room/count?user=${owner.id}`, { headers: { 'x-orbit-id': orbit.id } });
    expect(await res.json()).toEqual({ count: 2 });
    for (const s of sockets) s.socket.close();
  });
});
