// Downloads: streamed ciphertext with validators, one byte range, expiry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { addMember, createOrbit, expectError, expectStatus, json, registerUser, type TestOrbit, type TestUser } from '../support/api';
import { CHUNK, sha256Hex, THREE_CHUNKS, uploadFile } from '../support/media';
import type { Target } from '../support/types';

let t: Target;
let owner: TestUser;
let member: TestUser;
let orbit: TestOrbit;
let file: Uint8Array;
let mediaId: string;
beforeAll(async () => {
  t = await createTarget();
  owner = await registerUser(t);
  orbit = await createOrbit(t, owner);
  member = await addMember(t, owner, orbit);
  ({ file, mediaId } = await uploadFile(t, owner, orbit.id, THREE_CHUNKS));
});
afterAll(() => t?.close());

const download = (headers: Record<string, string> = {}, user = member, id = mediaId) => t.fetch(`/api/media/${id}/download`, { headers: { ...user.auth, ...headers } });
const bytesOf = async (res: Response) => new Uint8Array(await res.arrayBuffer());

describe('downloading', () => {
  it('streams the whole file with the contract headers and records one download per member', async () => {
    const before = await json(await t.fetch(`/api/media/${mediaId}/info`, { headers: member.auth }));
    expect(before.downloaded_by_me).toBe(false);
    const res = await expectStatus(await download(), 200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    expect(res.headers.get('content-length')).toBe(String(THREE_CHUNKS));
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('etag')).toMatch(/^"[^"]+"$/);
    expect(await sha256Hex(await bytesOf(res))).toBe(await sha256Hex(file));
    await (await download()).arrayBuffer();
    const rows = await t.sql(`select user_id from media_downloads where media_id = $1`, [mediaId]);
    expect(rows).toEqual([{ user_id: member.id }]);
    const after = await json(await t.fetch(`/api/media/${mediaId}/info`, { headers: member.auth }));
    expect(after).toMatchObject({ id: mediaId, size_bytes: THREE_CHUNKS, downloaded_by_me: true });
    const ownerView = await json(await t.fetch(`/api/media/${mediaId}/info`, { headers: owner.auth }));
    expect(ownerView.downloaded_by_me).toBe(false);
  });

  it('serves one byte range with 206 and Content-Range, across chunk boundaries and from the end', async () => {
    const cases: Array<[string, number, number]> = [
      ['bytes=0-99', 0, 99],
      [`bytes=${CHUNK - 10}-${CHUNK + 9}`, CHUNK - 10, CHUNK + 9],
      [`bytes=${2 * CHUNK}-`, 2 * CHUNK, THREE_CHUNKS - 1],
      ['bytes=-1234', THREE_CHUNKS - 1234, THREE_CHUNKS - 1],
      [`bytes=${THREE_CHUNKS - 5}-${THREE_CHUNKS + 100}`, THREE_CHUNKS - 5, THREE_CHUNKS - 1],
      [`bytes=-${THREE_CHUNKS + 7}`, 0, THREE_CHUNKS - 1],
    ];
    for (const [range, start, end] of cases) {
      const res = await expectStatus(await download({ range }), 206);
      expect(res.headers.get('content-range'), range).toBe(`bytes ${start}-${end}/${THREE_CHUNKS}`);
      expect(res.headers.get('content-length')).toBe(String(end - start + 1));
      expect(await sha256Hex(await bytesOf(res)), range).toBe(await sha256Hex(file.subarray(start, end + 1)));
    }
  });

  it('416 with Content-Range */size when no byte of the range exists; ranges it does not serve get the whole file', async () => {
    for (const range of [`bytes=${THREE_CHUNKS}-`, `bytes=${THREE_CHUNKS + 10}-${THREE_CHUNKS + 20}`, 'bytes=-0']) {
      const res = await download({ range });
      expect(res.headers.get('content-range'), range).toBe(`bytes */${THREE_CHUNKS}`);
      await expectError(res, 416, 'RANGE_NOT_SATISFIABLE');
    }
    for (const range of ['bytes=0-1,5-6', 'items=0-5', 'bytes=9-3', 'bytes=abc']) {
      const res = await expectStatus(await download({ range }), 200);
      expect(res.headers.get('content-length'), range).toBe(String(THREE_CHUNKS));
      await res.arrayBuffer();
    }
  });

  it('If-None-Match → 304; If-Range applies the range only while the validator still matches', async () => {
    const etag = (await download({ range: 'bytes=0-0' })).headers.get('etag')!;
    const lastModified = (await download({ range: 'bytes=0-0' })).headers.get('last-modified')!;
    const notModified = await download({ 'if-none-match': etag });
    expect(notModified.status).toBe(304);
    expect(notModified.headers.get('etag')).toBe(etag);
    expect(await notModified.text()).toBe('');
    expect((await download({ 'if-none-match': `"other", W/${etag}` })).status).toBe(304);
    expect((await download({ 'if-none-match': '*' })).status).toBe(304);
    await (await expectStatus(await download({ 'if-none-match': '"something-else"' }), 200)).arrayBuffer();

    const ranged = await expectStatus(await download({ range: 'bytes=10-19', 'if-range': etag }), 206);
    expect(Buffer.from(await bytesOf(ranged)).equals(file.subarray(10, 20))).toBe(true);
    const stale = await expectStatus(await download({ range: 'bytes=10-19', 'if-range': '"an-older-version"' }), 200);
    expect((await bytesOf(stale)).length).toBe(THREE_CHUNKS);
    const weak = await expectStatus(await download({ range: 'bytes=10-19', 'if-range': `W/${etag}` }), 200);
    await weak.arrayBuffer();
    await (await expectStatus(await download({ range: 'bytes=10-19', 'if-range': lastModified }), 206)).arrayBuffer();
    await (await expectStatus(await download({ range: 'bytes=10-19', 'if-range': 'Thu, 01 Jan 2015 00:00:00 GMT' }), 200)).arrayBuffer();
  });

  it('lists the orbit’s unexpired files newest first, page by page', async () => {
    const o = await createOrbit(t, owner);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await uploadFile(t, owner, o.id, 10 + i)).mediaId);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: Array<{ id: string; downloaded_by_me: boolean }>; next_cursor: string | null } = await json(
        await t.fetch(`/api/groups/${o.id}/media?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { headers: owner.auth }),
      );
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((m) => m.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    await t.sql(`update media set expires_at = now() - interval '1 second' where id = $1`, [ids[4]]);
    const after = await json(await t.fetch(`/api/groups/${o.id}/media`, { headers: owner.auth }));
    expect(after.items.map((m: { id: string }) => m.id)).toEqual([ids[3], ids[2], ids[1], ids[0]]);
    await expectError(await t.fetch(`/api/groups/${o.id}/media?cursor=nope`, { headers: owner.auth }), 400, 'VALIDATION_ERROR');
  });
});

describe('after expires_at', () => {
  it('download and info answer 410 GONE, before cleanup and after it; non-members still get 404', async () => {
    const o = await createOrbit(t, owner);
    const m = await addMember(t, owner, o);
    const stranger = await registerUser(t);
    const { mediaId: id } = await uploadFile(t, owner, o.id, 100);
    await (await expectStatus(await download({}, m, id), 200)).arrayBuffer();
    await t.sql(`update media set expires_at = now() - interval '1 second' where id = $1`, [id]);
    await expectError(await download({}, m, id), 410, 'GONE');
    await expectError(await t.fetch(`/api/media/${id}/info`, { headers: m.auth }), 410, 'GONE');
    await expectError(await download({}, stranger, id), 404, 'NOT_FOUND');

    await t.cleanup();
    expect(await t.sql(`select id from media where id = $1`, [id])).toEqual([]);
    await expectError(await download({}, m, id), 410, 'GONE');
    await expectError(await download({ range: 'bytes=0-1' }, owner, id), 410, 'GONE');
    await expectError(await t.fetch(`/api/media/${id}/info`, { headers: m.auth }), 410, 'GONE');
    await expectError(await download({}, stranger, id), 404, 'NOT_FOUND');
  });
});
