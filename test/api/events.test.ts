// Catch-up from the orbit event log: every create and delete appears at its seq with its object,
// deleted content is scrubbed, and a position older than the log keeps is 410 GONE.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, b64, createOrbit, expectError, expectStatus, json, post, registerUser } from '../support/api';
import { allEvents, getJson, newReply, newThread, pendingMember } from '../support/content';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

describe('orbit events', () => {
  it('every create and delete appears at its seq, carrying the created object', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const before = (await getJson(t, member, `/api/groups/${orbit.id}/events`)).items.length;
    const thread = await newThread(t, member, orbit.id);
    const reply = await newReply(t, owner, thread.id);
    const child = await newReply(t, member, thread.id, { parent_reply_id: reply.id });
    const message = await json(await t.fetch(`/api/groups/${orbit.id}/messages`, post({ key_epoch: 1, envelope: b64(64) }, owner.auth)));
    const second = await newThread(t, owner, orbit.id);
    await expectStatus(await t.fetch(`/api/replies/${child.id}`, { method: 'DELETE', headers: member.auth }), 204);

    const events = (await allEvents(t, owner, orbit.id)).slice(before);
    expect(events.map((e) => [e.type, e.seq])).toEqual([
      ['thread_created', thread.seq],
      ['reply_created', reply.seq],
      ['reply_created', child.seq],
      ['message_created', message.seq],
      ['thread_created', second.seq],
      ['reply_deleted', second.seq + 1],
    ]);
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i));
    expect(events[0]).toMatchObject({ group_id: orbit.id, actor_id: member.id, data: thread });
    expect(events[1]).toMatchObject({ actor_id: owner.id, data: reply });
    expect(events[3].data).toMatchObject({ id: message.id, envelope: expect.any(String), seq: message.seq, server_timestamp: message.server_timestamp });
    expect(events[4].data).toEqual(second);
    expect(events[5]).toMatchObject({ actor_id: member.id, data: { id: child.id, thread_id: thread.id } });
    // The deleted reply's own event is scrubbed; the others keep their content.
    expect(events[2].data).toEqual({ id: child.id, deleted: true });
    expect(new Date(events[0].at).toISOString()).toBe(events[0].at);
    const { last_seq } = await getJson(t, owner, `/api/groups/${orbit.id}`);
    expect(last_seq).toBe(seqs[seqs.length - 1]);
  });

  it('a deleted thread’s content is gone from the log: its events become {id, deleted: true}', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const title = b64(48);
    const body = b64(480);
    const replyBody = b64(96);
    const thread = await newThread(t, member, orbit.id, { encrypted_title: title, encrypted_body: body });
    const reply = await newReply(t, owner, thread.id, { encrypted_body: replyBody });
    const kept = await newThread(t, owner, orbit.id);
    await expectStatus(await t.fetch(`/api/threads/${thread.id}`, { method: 'DELETE', headers: member.auth }), 204);
    const events = await allEvents(t, owner, orbit.id);
    const text = JSON.stringify(events);
    for (const secret of [title, body, replyBody]) expect(text).not.toContain(secret);
    expect(events.find((e) => e.seq === thread.seq)).toMatchObject({ type: 'thread_created', data: { id: thread.id, deleted: true } });
    expect(events.find((e) => e.seq === reply.seq)).toMatchObject({ type: 'reply_created', data: { id: reply.id, deleted: true } });
    expect(events.find((e) => e.seq === kept.seq)!.data).toEqual(kept);
    expect(events[events.length - 1]).toMatchObject({ type: 'thread_deleted', actor_id: member.id, data: { id: thread.id } });
    // Scrubbed in the database too, not only in the view.
    const stored = await t.sql<{ data: unknown }>('select data from orbit_events where group_id = $1 and seq = $2', [orbit.id, thread.seq]);
    expect(stored[0]!.data).toEqual({ id: thread.id, deleted: true });
  });

  it('pages with after_seq and limit, and reports the oldest kept seq', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    for (let i = 0; i < 7; i++) await newThread(t, owner, orbit.id);
    const first = await getJson(t, owner, `/api/groups/${orbit.id}/events?limit=3`);
    expect(first.items.map((e: any) => e.seq)).toEqual([1, 2, 3]);
    expect(first).toMatchObject({ next_after_seq: 3, oldest_seq: 1 });
    const rest = await getJson(t, owner, `/api/groups/${orbit.id}/events?after_seq=3`);
    expect(rest.items.map((e: any) => e.seq)).toEqual([4, 5, 6, 7]);
    expect(rest.next_after_seq).toBe(7);
    expect(await getJson(t, owner, `/api/groups/${orbit.id}/events?after_seq=7`)).toEqual({ items: [], next_after_seq: 7, oldest_seq: 1 });
    for (const bad of ['after_seq=-1', 'after_seq=x', 'limit=0', 'limit=101']) {
      await expectError(await t.fetch(`/api/groups/${orbit.id}/events?${bad}`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
    }
  });

  it('answers 410 GONE with details.oldest_seq once the asked position is older than the log keeps', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    for (let i = 0; i < 5; i++) await newThread(t, owner, orbit.id);
    await t.sql(`update orbit_events set at = now() - interval '40 days' where group_id = $1 and seq <= 3`, [orbit.id]);
    await t.cleanup();
    const err = await expectError(await t.fetch(`/api/groups/${orbit.id}/events?after_seq=0`, { headers: owner.auth }), 410, 'GONE');
    expect(err.details?.oldest_seq).toBe(4);
    await expectError(await t.fetch(`/api/groups/${orbit.id}/events?after_seq=2`, { headers: owner.auth }), 410, 'GONE');
    const ok = await getJson(t, owner, `/api/groups/${orbit.id}/events?after_seq=3`);
    expect(ok).toMatchObject({ oldest_seq: 4, next_after_seq: 5 });
    expect(ok.items.map((e: any) => e.seq)).toEqual([4, 5]);
    // With everything pruned, the current position is still fine and older ones are gone.
    await t.sql(`update orbit_events set at = now() - interval '40 days' where group_id = $1`, [orbit.id]);
    await t.cleanup();
    expect(await getJson(t, owner, `/api/groups/${orbit.id}/events?after_seq=5`)).toEqual({ items: [], next_after_seq: 5, oldest_seq: 6 });
    expect((await expectError(await t.fetch(`/api/groups/${orbit.id}/events?after_seq=4`, { headers: owner.auth }), 410, 'GONE')).details?.oldest_seq).toBe(6);
  });

  it('pending members may read events; strangers get 404', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const pending = await pendingMember(t, owner, orbit.id);
    const thread = await newThread(t, owner, orbit.id);
    const events = await allEvents(t, pending, orbit.id);
    expect(events.map((e) => e.type)).toEqual(['member_joined', 'thread_created']);
    expect(events[1].data.id).toBe(thread.id);
    const stranger = await registerUser(t);
    await expectError(await t.fetch(`/api/groups/${orbit.id}/events`, { headers: stranger.auth }), 404, 'NOT_FOUND');
  });
});
