// The first path every client walks: register, create an orbit, invite, join, deliver the key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, createOrbit, json, registerUser } from '../support/api';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

describe('first steps', () => {
  it('a new member joins pending and writes once the owner delivers the key', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    expect(orbit.group).toMatchObject({ role: 'owner', key_epoch: 1, key_status: 'delivered', member_count: 1, last_seq: 0 });
    const member = await addMember(t, owner, orbit);
    const listed = await json(await t.fetch('/api/groups', { headers: member.auth }));
    expect(listed.items).toHaveLength(1);
    expect(listed.items[0]).toMatchObject({ id: orbit.id, role: 'member', key_status: 'delivered', member_count: 2, last_seq: 2 });
    const events = await t.sql<{ type: string; seq: string }>('select type, seq from orbit_events where group_id = $1 order by seq', [orbit.id]);
    expect(events.map((e) => [e.type, Number(e.seq)])).toEqual([
      ['member_joined', 1],
      ['member_key_delivered', 2],
    ]);
  });
});
