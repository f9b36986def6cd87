// The Node hub's own duties: periodic session checks, the last_seq poll behind lost notifications,
// dropping a reader that falls behind without holding up the others, and closing on shutdown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTarget } from '#target';
import type { NodeLiveHub } from '../../src/adapters/live-node';
import { appendEvent } from '../../src/domain/events';
import { bearer, createOrbit, post, registerUser } from '../support/api';
import { livePath, openLive, range, seqsUntil, writeEvents } from '../support/live';

let t: Awaited<ReturnType<typeof createTarget>>;
beforeAll(async () => {
  // A short liveness interval: the check must run by itself, not only when a test asks for it.
  t = await createTarget({ live: { livenessIntervalMs: 200, pollIntervalMs: 1000 } });
});
afterAll(() => t?.close());

describe('Node live hub', () => {
  it('closes the sockets of an ended session 4401 at its periodic check', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const second = await (await t.fetch('/api/auth/login', post({ username: owner.username, password: owner.password }))).json();
    const s = await openLive(t, livePath(orbit.id), bearer(second.access_token));
    const sid = JSON.parse(Buffer.from(second.access_token.split('.')[1], 'base64url').toString()).sid;
    await t.sql('update sessions set revoked_at = now() where id = $1', [sid]);
    expect((await s.socket.closed).code).toBe(4401);
  });

  it('delivers an event whose notification never came, from the poll of last_seq', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const { socket } = await openLive(t, livePath(orbit.id), owner.auth);
    // Committed without any fan-out, as if the process that wrote it crashed before notifying.
    await t.deps.db.transaction((tx) => appendEvent(tx, { groupId: orbit.id, type: 'group_updated', actorId: owner.id, data: { silent: true } }));
    expect(await socket.next(10_000)).toMatchObject({ seq: 1, data: { silent: true } });
    socket.close();
  });

  it('a reader more than 4 MiB behind is closed 1013 while the others get every event', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const fast = await openLive(t, livePath(orbit.id), owner.auth);

    const slow = new WebSocket(t.url.replace('http', 'ws') + livePath(orbit.id), { headers: owner.auth });
    const frames: string[] = [];
    slow.on('message', (data) => frames.push(String(data)));
    const closed = new Promise<number>((resolve) => slow.on('close', (code) => resolve(code)));
    await new Promise((resolve) => slow.once('message', resolve)); // ready
    // Stops reading: the kernel's buffers fill, then the server's queue grows.
    (slow as unknown as { _socket: { pause(): void } })._socket.pause();

    // Rounds of 8 MiB until the server gives up on it (the kernel absorbs a few MiB first).
    const blob = 'x'.repeat(1024 * 1024);
    let written = 0;
    const slowOpen = async () => (t.deps.live as NodeLiveHub).countSockets(orbit.id, owner.id) === 2;
    while (written < 96 && (await slowOpen())) {
      await writeEvents(t, orbit.id, owner.id, 8, { data: (i) => ({ i, blob }) });
      written += 8;
      expect(await seqsUntil(fast.socket, written)).toEqual(range(written - 7, written));
      await new Promise((r) => setTimeout(r, 1500)); // past the grace a burst gets
    }
    expect(await slowOpen()).toBe(false);

    (slow as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await closed).toBe(1013);
    // What it did get was in order, without a gap.
    const seqs = frames.map((f) => JSON.parse(f)).filter((f) => f.group_id).map((f) => f.seq);
    expect(seqs).toEqual(range(1, seqs.length));
    fast.socket.close();
  });

  it('shutdown closes live sockets 1001', async () => {
    const other = await createTarget();
    const owner = await registerUser(other);
    const orbit = await createOrbit(other, owner);
    const { socket } = await openLive(other, livePath(orbit.id), owner.auth);
    await other.close();
    expect((await socket.closed).code).toBe(1001);
  });
});
