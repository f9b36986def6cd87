// Threads: create, get, list (keyset paging while others write, by activity), read markers,
// KEY_PENDING, size caps, and who may delete.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, b64, createOrbit, expectError, expectStatus, json, post, registerUser } from '../support/api';
import { bigB64, getJson, newReply, newThread, pendingMember } from '../support/content';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

const THREAD_FIELDS = [
  'author_id',
  'author_username',
  'created_at',
  'encrypted_body',
  'encrypted_title',
  'group_id',
  'id',
  'key_epoch',
  'last_activity_at',
  'last_activity_seq',
  'last_read_seq',
  'media_count',
  'reply_count',
  'seq',
  'unread_count',
];

describe('creating and reading threads', () => {
  it('returns the thread with exactly the contract fields, the same through GET and the list', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const title = b64(60);
    const body = b64(500);
    const res = await t.fetch('/api/threads', post({ group_id: orbit.id, key_epoch: 1, encrypted_title: title, encrypted_body: body }, owner.auth));
    await expectStatus(res, 201);
    const thread = await json(res);
    expect(Object.keys(thread).sort()).toEqual(THREAD_FIELDS);
    expect(thread).toMatchObject({
      group_id: orbit.id,
      author_id: owner.id,
      author_username: owner.username,
      key_epoch: 1,
      encrypted_title: title,
      encrypted_body: body,
      reply_count: 0,
      media_count: 0,
      last_read_seq: 0,
      unread_count: 0,
      seq: 1,
      last_activity_seq: 1,
    });
    expect(new Date(thread.created_at).toISOString()).toBe(thread.created_at);
    expect(thread.last_activity_at).toBe(thread.created_at);
    expect(await getJson(t, owner, `/api/threads/${thread.id}`)).toEqual(thread);
    const list = await getJson(t, owner, `/api/groups/${orbit.id}/threads`);
    expect(list).toEqual({ items: [thread], next_cursor: null });
  });

  it('hides threads of orbits the caller is not in behind 404', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const thread = await newThread(t, owner, orbit.id);
    const stranger = await registerUser(t);
    await expectError(await t.fetch(`/api/threads/${thread.id}`, { headers: stranger.auth }), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/groups/${orbit.id}/threads`, { headers: stranger.auth }), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/threads/${crypto.randomUUID()}`, { headers: owner.auth }), 404, 'NOT_FOUND');
    await expectError(
      await t.fetch('/api/threads', post({ group_id: orbit.id, key_epoch: 1, encrypted_title: b64(10), encrypted_body: b64(10) }, stranger.auth)),
      404,
      'NOT_FOUND',
    );
    // The same message for a thread that does not exist and one in someone else's orbit.
    const a = await json(await t.fetch(`/api/threads/${thread.id}`, { headers: stranger.auth }));
    const b = await json(await t.fetch(`/api/threads/${crypto.randomUUID()}`, { headers: stranger.auth }));
    expect(a.error.message).toBe(b.error.message);
  });

  it('answers 403 KEY_PENDING to a pending member who writes, while letting them read', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const thread = await newThread(t, owner, orbit.id);
    const pending = await pendingMember(t, owner, orbit.id);
    await expectError(
      await t.fetch('/api/threads', post({ group_id: orbit.id, key_epoch: 1, encrypted_title: b64(10), encrypted_body: b64(10) }, pending.auth)),
      403,
      'KEY_PENDING',
    );
    await expectError(await t.fetch(`/api/threads/${thread.id}/replies`, post({ key_epoch: 1, encrypted_body: b64(10) }, pending.auth)), 403, 'KEY_PENDING');
    await expectError(await t.fetch(`/api/threads/${thread.id}`, { method: 'DELETE', headers: pending.auth }), 403, 'KEY_PENDING');
    const list = await getJson(t, pending, `/api/groups/${orbit.id}/threads`);
    expect(list.items.map((x: any) => x.id)).toEqual([thread.id]);
    await getJson(t, pending, `/api/threads/${thread.id}/replies`);
    const rows = await t.sql('select id from threads where group_id = $1', [orbit.id]);
    expect(rows).toHaveLength(1);
  });

  it('refuses a key_epoch above the orbit’s current one', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const err = await expectError(
      await t.fetch('/api/threads', post({ group_id: orbit.id, key_epoch: 2, encrypted_title: b64(10), encrypted_body: b64(10) }, owner.auth)),
      400,
      'VALIDATION_ERROR',
    );
    expect(err.details?.current_key_epoch).toBe(1);
  });

  it('caps title at 4 KiB and body at 64 KiB decoded (413), refuses non-base64 (400)', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const create = (title: string, body: string) =>
      t.fetch('/api/threads', post({ group_id: orbit.id, key_epoch: 1, encrypted_title: title, encrypted_body: body }, owner.auth));
    await expectStatus(await create(bigB64(4096), bigB64(65536)), 201);
    await expectError(await create(bigB64(4097), b64(10)), 413, 'PAYLOAD_TOO_LARGE');
    await expectError(await create(b64(10), bigB64(65537)), 413, 'PAYLOAD_TOO_LARGE');
    await expectError(await create('not base64!', b64(10)), 400, 'VALIDATION_ERROR');
    await expectError(await create(b64(10), 'QUJD'.slice(0, 3)), 400, 'VALIDATION_ERROR');
    // A body no valid request could have is refused before it is read, whatever its content.
    await expectError(await create(b64(10), b64(10) + ' '.repeat(200_000)), 413, 'PAYLOAD_TOO_LARGE');
    const rows = await t.sql('select id from threads where group_id = $1', [orbit.id]);
    expect(rows).toHaveLength(1);
  });
});

describe('listing threads', () => {
  it('pages 45 threads by 20 without skipping or repeating while others post', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const created: string[] = [];
    for (let i = 0; i < 45; i++) created.push((await newThread(t, i % 2 ? member : owner, orbit.id)).id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: any = await getJson(t, owner, `/api/groups/${orbit.id}/threads?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(20);
      const seqs = page.items.map((x: any) => x.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
      seen.push(...page.items.map((x: any) => x.id));
      cursor = page.next_cursor;
      pages++;
      // Others keep posting (and replying, which moves activity but not creation order).
      await newThread(t, member, orbit.id);
      await newReply(t, owner, created[pages * 7]!);
    } while (cursor);
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual([...created].reverse());
  });

  it('defaults to 20 per page, caps limit at 100 and refuses bad cursors with 400', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    for (let i = 0; i < 21; i++) await newThread(t, owner, orbit.id);
    const page = await getJson(t, owner, `/api/groups/${orbit.id}/threads`);
    expect(page.items).toHaveLength(20);
    expect(typeof page.next_cursor).toBe('string');
    await expectError(await t.fetch(`/api/groups/${orbit.id}/threads?limit=101`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
    await expectError(await t.fetch(`/api/groups/${orbit.id}/threads?limit=0`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
    for (const bad of ['garbage', 'W10', Buffer.from('["x"]').toString('base64url'), Buffer.from('{').toString('base64url')]) {
      await expectError(await t.fetch(`/api/groups/${orbit.id}/threads?cursor=${bad}`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
    }
    // A cursor of one sort order is not accepted by the other.
    await expectError(await t.fetch(`/api/groups/${orbit.id}/threads?sort=activity&cursor=${page.next_cursor}`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
    await expectError(await t.fetch(`/api/groups/${orbit.id}/threads?sort=newest`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
  });

  it('sort=activity puts the thread with the latest reply first and pages by it', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const a = await newThread(t, owner, orbit.id);
    const b = await newThread(t, owner, orbit.id);
    const c = await newThread(t, owner, orbit.id);
    const reply = await newReply(t, owner, a.id);
    const first = await getJson(t, owner, `/api/groups/${orbit.id}/threads?sort=activity&limit=2`);
    expect(first.items.map((x: any) => x.id)).toEqual([a.id, c.id]);
    expect(first.items[0]).toMatchObject({ last_activity_seq: reply.seq, last_activity_at: reply.created_at, reply_count: 1 });
    const second = await getJson(t, owner, `/api/groups/${orbit.id}/threads?sort=activity&limit=2&cursor=${first.next_cursor}`);
    expect(second).toEqual({ items: [expect.objectContaining({ id: b.id })], next_cursor: null });
    const byCreation = await getJson(t, owner, `/api/groups/${orbit.id}/threads`);
    expect(byCreation.items.map((x: any) => x.id)).toEqual([c.id, b.id, a.id]);
  });
});

describe('read markers', () => {
  it('unread counts follow the caller’s read marker, which never moves back', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const member = await addMember(t, owner, orbit);
    const thread = await newThread(t, owner, orbit.id);
    const r1 = await newReply(t, member, thread.id);
    const r2 = await newReply(t, member, thread.id);
    const r3 = await newReply(t, member, thread.id);
    const unread = async (user = owner) => (await getJson(t, user, `/api/threads/${thread.id}`)) as { unread_count: number; last_read_seq: number };
    expect(await unread()).toMatchObject({ unread_count: 3, last_read_seq: 0 });
    // One's own replies are never unread.
    expect(await unread(member)).toMatchObject({ unread_count: 0, last_read_seq: 0 });

    const mark = (seq: number, user = owner) => t.fetch(`/api/threads/${thread.id}/read`, post({ seq }, user.auth, 'PUT'));
    await expectStatus(await mark(r1.seq), 204);
    expect(await unread()).toMatchObject({ unread_count: 2, last_read_seq: r1.seq });
    await expectStatus(await mark(r3.seq), 204);
    expect(await unread()).toMatchObject({ unread_count: 0, last_read_seq: r3.seq });
    await expectStatus(await mark(r2.seq), 204);
    expect(await unread()).toMatchObject({ unread_count: 0, last_read_seq: r3.seq });

    // The list shows the same per-caller numbers; the marker is the caller's alone.
    const r4 = await newReply(t, member, thread.id);
    const listed = await getJson(t, owner, `/api/groups/${orbit.id}/threads`);
    expect(listed.items[0]).toMatchObject({ id: thread.id, unread_count: 1, last_read_seq: r3.seq, reply_count: 4 });
    const third = await addMember(t, owner, orbit);
    expect(await unread(third)).toMatchObject({ unread_count: 4, last_read_seq: 0 });

    // Deleted replies are not unread; a marker beyond the orbit's last seq is held at it.
    await expectStatus(await t.fetch(`/api/replies/${r4.id}`, { method: 'DELETE', headers: member.auth }), 204);
    expect(await unread(third)).toMatchObject({ unread_count: 3 });
    await expectStatus(await mark(1_000_000, third), 204);
    const lastSeq = Number((await t.sql<{ last_seq: string }>('select last_seq from groups where id = $1', [orbit.id]))[0]!.last_seq);
    expect(await unread(third)).toMatchObject({ unread_count: 0, last_read_seq: lastSeq });
    const r5 = await newReply(t, member, thread.id);
    expect(r5.seq).toBeGreaterThan(lastSeq);
    expect(await unread(third)).toMatchObject({ unread_count: 1 });
  });

  it('refuses bad read bodies and strangers', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const thread = await newThread(t, owner, orbit.id);
    for (const body of [{}, { seq: -1 }, { seq: 1.5 }, { seq: '3' }]) {
      await expectError(await t.fetch(`/api/threads/${thread.id}/read`, post(body, owner.auth, 'PUT')), 400, 'VALIDATION_ERROR');
    }
    const stranger = await registerUser(t);
    await expectError(await t.fetch(`/api/threads/${thread.id}/read`, post({ seq: 1 }, stranger.auth, 'PUT')), 404, 'NOT_FOUND');
  });
});

describe('deleting threads', () => {
  it('lets the author and the owner delete, and nobody else', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const author = await addMember(t, owner, orbit);
    const other = await addMember(t, owner, orbit);
    const first = await newThread(t, author, orbit.id);
    const second = await newThread(t, author, orbit.id);
    const del = (id: string, user: typeof owner) => t.fetch(`/api/threads/${id}`, { method: 'DELETE', headers: user.auth });
    await expectError(await del(first.id, other), 403, 'FORBIDDEN');
    await expectStatus(await del(first.id, author), 204);
    await expectStatus(await del(second.id, owner), 204);
    await expectError(await del(second.id, owner), 404, 'NOT_FOUND');
    await expectError(await t.fetch(`/api/threads/${first.id}`, { headers: author.auth }), 404, 'NOT_FOUND');
    expect((await getJson(t, owner, `/api/groups/${orbit.id}/threads`)).items).toEqual([]);
  });
});
