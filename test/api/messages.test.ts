// Relay messages: envelopes for everyone or per recipient; a per-recipient envelope is visible
// only to its recipient, in the message list and in the event log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, b64, createOrbit, expectError, expectStatus, json, post, registerUser } from '../support/api';
import { allEvents, bigB64, getJson, pendingMember } from '../support/content';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const send = (groupId: string, user: { auth: Record<string, string> }, body: unknown) => t.fetch(`/api/groups/${groupId}/messages`, post(body, user.auth));

describe('relay messages', () => {
  it('an envelope for everyone reaches every member, with id, seq and server_timestamp', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const envelope = b64(500);
    const res = await send(orbit.id, member, { key_epoch: 1, envelope });
    await expectStatus(res, 201);
    const receipt = await json(res);
    expect(Object.keys(receipt).sort()).toEqual(['id', 'seq', 'server_timestamp']);
    expect(new Date(receipt.server_timestamp).toISOString()).toBe(receipt.server_timestamp);
    const list = await getJson(t, owner, `/api/groups/${orbit.id}/messages`);
    expect(list).toEqual({
      items: [{ id: receipt.id, sender_id: member.id, key_epoch: 1, envelope, seq: receipt.seq, server_timestamp: receipt.server_timestamp }],
      next_after_seq: receipt.seq,
    });
    expect(await getJson(t, owner, `/api/groups/${orbit.id}/messages?after_seq=${receipt.seq}`)).toEqual({ items: [], next_after_seq: receipt.seq });
  });

  it('per-recipient envelopes are readable only by their recipients, in /messages and in /events', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const alice = await addMember(t, owner, orbit);
    const bob = await addMember(t, owner, orbit);
    const carol = await addMember(t, owner, orbit);
    const forAlice = b64(300);
    const forBob = b64(300);
    const res = await send(orbit.id, owner, { recipients: [{ user_id: alice.id, envelope: forAlice }, { user_id: bob.id, envelope: forBob }] });
    await expectStatus(res, 201);
    const receipt = await json(res);

    const messagesOf = async (user: typeof owner) => (await getJson(t, user, `/api/groups/${orbit.id}/messages`)).items;
    expect(await messagesOf(alice)).toEqual([expect.objectContaining({ id: receipt.id, envelope: forAlice, sender_id: owner.id, key_epoch: null })]);
    expect(await messagesOf(bob)).toEqual([expect.objectContaining({ id: receipt.id, envelope: forBob })]);
    expect(await messagesOf(carol)).toEqual([]);
    expect(await messagesOf(owner)).toEqual([]);

    const eventOf = async (user: typeof owner) => {
      const events = await allEvents(t, user, orbit.id);
      const event = events.find((e) => e.type === 'message_created');
      return { event, text: JSON.stringify(events) };
    };
    const a = await eventOf(alice);
    expect(a.event).toMatchObject({ seq: receipt.seq, actor_id: owner.id, data: { id: receipt.id, envelope: forAlice, seq: receipt.seq } });
    expect(a.text).not.toContain(forBob);
    const b = await eventOf(bob);
    expect(b.event.data.envelope).toBe(forBob);
    expect(b.text).not.toContain(forAlice);
    for (const other of [carol, owner]) {
      const o = await eventOf(other);
      expect(o.event).toMatchObject({ seq: receipt.seq, data: { id: receipt.id, envelope: null, sender_id: owner.id } });
      expect(o.text).not.toContain(forAlice);
      expect(o.text).not.toContain(forBob);
      // Who the envelopes were for is not told to the others either.
      expect(JSON.stringify(o.event)).not.toContain(alice.id);
    }
  });

  it('pages by after_seq, skipping what is not addressed to the caller', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const other = await addMember(t, owner, orbit);
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) {
      mine.push((await json(await send(orbit.id, owner, { envelope: b64(20) }))).id);
      await send(orbit.id, owner, { recipients: [{ user_id: other.id, envelope: b64(20) }] });
      mine.push((await json(await send(orbit.id, owner, { recipients: [{ user_id: member.id, envelope: b64(20) }] }))).id);
    }
    const seen: string[] = [];
    let after = 0;
    for (;;) {
      const page = await getJson(t, member, `/api/groups/${orbit.id}/messages?after_seq=${after}&limit=3`);
      seen.push(...page.items.map((m: any) => m.id));
      if (page.items.length) expect(page.next_after_seq).toBe(page.items[page.items.length - 1].seq);
      if (page.items.length < 3) break;
      after = page.next_after_seq;
    }
    expect(seen).toEqual(mine);
    await expectError(await t.fetch(`/api/groups/${orbit.id}/messages?after_seq=-1`, { headers: member.auth }), 400, 'VALIDATION_ERROR');
    await expectError(await t.fetch(`/api/groups/${orbit.id}/messages?limit=101`, { headers: member.auth }), 400, 'VALIDATION_ERROR');
  });

  it('refuses recipients outside the orbit, repeats, and bodies with both or neither form', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const stranger = await registerUser(t);
    const err = await expectError(
      await send(orbit.id, owner, { recipients: [{ user_id: member.id, envelope: b64(10) }, { user_id: stranger.id, envelope: b64(10) }] }),
      400,
      'VALIDATION_ERROR',
    );
    expect(err.details?.not_members).toEqual([stranger.id]);
    await expectError(await send(orbit.id, owner, { recipients: [{ user_id: member.id, envelope: b64(10) }, { user_id: member.id, envelope: b64(10) }] }), 400, 'VALIDATION_ERROR');
    await expectError(await send(orbit.id, owner, { envelope: b64(10), recipients: [{ user_id: member.id, envelope: b64(10) }] }), 400, 'VALIDATION_ERROR');
    await expectError(await send(orbit.id, owner, { key_epoch: 1 }), 400, 'VALIDATION_ERROR');
    await expectError(await send(orbit.id, owner, { recipients: [] }), 400, 'VALIDATION_ERROR');
    const many = Array.from({ length: 101 }, () => ({ user_id: crypto.randomUUID(), envelope: b64(4) }));
    await expectError(await send(orbit.id, owner, { recipients: many }), 400, 'VALIDATION_ERROR');
    await expectError(await send(orbit.id, owner, { key_epoch: 2, envelope: b64(10) }), 400, 'VALIDATION_ERROR');
    await expectError(await send(orbit.id, owner, { envelope: 'no!' }), 400, 'VALIDATION_ERROR');
    expect(await t.sql('select id from signal_messages where group_id = $1', [orbit.id])).toEqual([]);
  });

  it('caps an envelope at 256 KiB and all recipients’ envelopes at 1 MiB, decoded', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    await expectStatus(await send(orbit.id, owner, { envelope: bigB64(256 * 1024) }), 201);
    await expectError(await send(orbit.id, owner, { envelope: bigB64(256 * 1024 + 1) }), 413, 'PAYLOAD_TOO_LARGE');
    await expectError(await send(orbit.id, owner, { recipients: [{ user_id: member.id, envelope: bigB64(256 * 1024 + 1) }] }), 413, 'PAYLOAD_TOO_LARGE');
    const five = Array.from({ length: 5 }, () => ({ user_id: crypto.randomUUID(), envelope: bigB64(210_000) }));
    await expectError(await send(orbit.id, owner, { recipients: five }), 413, 'PAYLOAD_TOO_LARGE');
    const four = [member, owner].map((u) => ({ user_id: u.id, envelope: bigB64(256 * 1024) }));
    await expectStatus(await send(orbit.id, owner, { recipients: four }), 201);
    // Larger than any valid request: refused before it is read.
    await expectError(await send(orbit.id, owner, { envelope: bigB64(2 * 1024 * 1024) }), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('answers KEY_PENDING to a pending sender, who may still read; strangers get 404', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const pending = await pendingMember(t, owner, orbit.id);
    await expectError(await send(orbit.id, pending, { envelope: b64(10) }), 403, 'KEY_PENDING');
    await expectStatus(await send(orbit.id, owner, { recipients: [{ user_id: pending.id, envelope: b64(10) }] }), 201);
    expect((await getJson(t, pending, `/api/groups/${orbit.id}/messages`)).items).toHaveLength(1);
    const stranger = await registerUser(t);
    await expectError(await send(orbit.id, stranger, { envelope: b64(10) }), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/groups/${orbit.id}/messages`, { headers: stranger.auth }), 404, 'NOT_FOUND');
  });
});
