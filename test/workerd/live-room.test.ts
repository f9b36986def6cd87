// The orbit's Durable Object through the Worker: sockets survive hibernation with their order,
// and pings are answered by the runtime without waking the object.
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { roomStub } from '../../src/adapters/fanout-do';
import type { WorkerEnv } from '../../src/runtime/worker-deps';
import { addMember, createOrbit, registerUser } from '../support/api';
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

  it('holds the cap of 5 per user itself: a sixth socket handed over is refused 429 until one closes', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const sockets = [];
    for (let i = 0; i < 5; i++) sockets.push((await openLive(t, livePath(orbit.id), owner.auth)).socket);
    // What the Worker hands over after authorizing an upgrade (no count is asked first).
    const sid = JSON.parse(Buffer.from(owner.access.split('.')[1]!, 'base64url').toString()).sid;
    const identity = { groupId: orbit.id, userId: owner.id, sessionId: sid, tokenExpiresAt: 2e9, joinedAt: 0, afterSeq: null };
    const connect = () =>
      stubOf(orbit.id).fetch('https://orbit-room/connect', {
        headers: { upgrade: 'websocket', 'x-orbit-id': orbit.id, 'x-orbital-live-identity': JSON.stringify(identity) },
      });
    expect((await connect()).status).toBe(429);
    sockets[0]!.close();
    await sockets[0]!.closed;
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 101; attempt++) {
      const res = await connect();
      status = res.status;
      if (status === 101) res.webSocket!.accept();
      else await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(101);
    for (const s of sockets.slice(1)) s.close();
  });

  it('keeps checking access after a database failure in its alarm: the check re-arms, and a removed member is closed next time', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const { socket } = await openLive(t, livePath(orbit.id), member.auth);
    const stub = stubOf(orbit.id);
    // The database goes away for one check (as when Neon restarts a compute).
    const outage = await runInDurableObject(stub, async (room: any, state: any) => {
      const host = room.room.host;
      const real = host.withDb;
      host.withDb = async () => {
        host.withDb = real;
        throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
      };
      await state.storage.deleteAlarm();
      // Far ahead, so only the test runs it: one due now may fire by itself first on a busy machine.
      await state.storage.setAlarm(Date.now() + 3_600_000);
      return 'armed';
    });
    expect(outage).toBe('armed');
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runInDurableObject(stub, (_room: any, state: any) => state.storage.getAlarm())).not.toBeNull();

    await t.sql('delete from group_members where group_id = $1 and user_id = $2', [orbit.id, member.id]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await socket.closed).code).toBe(4403);
  });
});
