// The orbit event log under concurrent writers: seq strictly increasing and gap-free per orbit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { appendEvent, readEvents } from '../../src/domain/events';
import { createOrbit, registerUser } from '../support/api';

let t: Awaited<ReturnType<typeof createTarget>>;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

describe('orbit event log', () => {
  it('20 concurrent transactions appending 10 events each get seq 1..200 with no gap or duplicate', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await Promise.all(
      Array.from({ length: 20 }, (_, writer) =>
        t.deps.db.transaction(async (tx) => {
          for (let i = 0; i < 10; i++) {
            await appendEvent(tx, { groupId: orbit.id, type: 'group_updated', actorId: owner.id, data: { writer, i } });
            // Give other transactions a chance to interleave on a real server.
            await new Promise((r) => setTimeout(r, Math.random() * 3));
          }
        }),
      ),
    );
    const events = await readEvents(t.deps.db, orbit.id, 0, 1000);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    // Each writer's events are contiguous: a transaction holds the orbit row until it commits.
    const rows = await t.sql<{ last_seq: string }>('select last_seq from groups where id = $1', [orbit.id]);
    expect(Number(rows[0]!.last_seq)).toBe(200);
  });

  it('a rolled-back transaction gives its seq back', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await expect(
      t.deps.db.transaction(async (tx) => {
        await appendEvent(tx, { groupId: orbit.id, type: 'group_updated', actorId: owner.id, data: {} });
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    await t.deps.db.transaction((tx) => appendEvent(tx, { groupId: orbit.id, type: 'group_updated', actorId: owner.id, data: {} }));
    const events = await readEvents(t.deps.db, orbit.id, 0, 10);
    expect(events.map((e) => e.seq)).toEqual([1]);
  });
});
