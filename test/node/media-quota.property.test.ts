// Property: whatever happens to uploads and files, in whatever order (and two steps at once),
// every orbit's quota equals the sum of its media rows, and no request fails with a 500.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { runCleanup } from '../../src/domain/cleanup';
import { addMember, createOrbit, registerUser, type TestUser } from '../support/api';
import { CHUNK, complete, putChunk, startUploadRaw } from '../support/media';

let t: Awaited<ReturnType<typeof createTarget>>;
let users: TestUser[];
let orbits: string[];
const zeros = new Uint8Array(CHUNK);

beforeAll(async () => {
  t = await createTarget();
  const owner = await registerUser(t);
  const a = await createOrbit(t, owner);
  const b = await createOrbit(t, owner);
  const member = await addMember(t, owner, a);
  const other = await addMember(t, owner, b);
  users = [owner, member, other];
  orbits = [a.id, b.id];
});
afterAll(() => t?.close());

interface Upload {
  id: string;
  user: TestUser;
  size: number;
  chunks: number;
}

type Step =
  | { kind: 'start'; user: number; orbit: number; size: number }
  | { kind: 'chunk'; upload: number; index: number }
  | { kind: 'fill'; upload: number }
  | { kind: 'complete'; upload: number }
  | { kind: 'abort'; upload: number; byOwner: boolean }
  | { kind: 'delete'; upload: number; byOwner: boolean }
  | { kind: 'cleanup'; hoursAhead: number }
  | { kind: 'limit'; orbit: number; bytes: number }
  | { kind: 'both'; a: Step; b: Step };

const simple: fc.Arbitrary<Step> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('start' as const),
      user: fc.nat(2),
      orbit: fc.nat(1),
      size: fc.oneof({ arbitrary: fc.integer({ min: 1, max: 400 }), weight: 6 }, { arbitrary: fc.integer({ min: CHUNK + 1, max: CHUNK + 400 }), weight: 1 }),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant('chunk' as const), upload: fc.nat(30), index: fc.nat(1) }), weight: 5 },
  { arbitrary: fc.record({ kind: fc.constant('fill' as const), upload: fc.nat(30) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('complete' as const), upload: fc.nat(30) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('abort' as const), upload: fc.nat(30), byOwner: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('delete' as const), upload: fc.nat(30), byOwner: fc.boolean() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('cleanup' as const), hoursAhead: fc.constantFrom(0, 2, 30, 24 * 8) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('limit' as const), orbit: fc.nat(1), bytes: fc.constantFrom(500, 2000, 20 * CHUNK, 10_737_418_240) }), weight: 1 },
);
const step: fc.Arbitrary<Step> = fc.oneof({ arbitrary: simple, weight: 5 }, { arbitrary: fc.record({ kind: fc.constant('both' as const), a: simple, b: simple }), weight: 1 });

async function expectStatusIn(res: Response, allowed: number[], what: string) {
  const body = await res.text();
  if (!allowed.includes(res.status)) throw new Error(`${what}: unexpected ${res.status} ${body.slice(0, 200)}`);
  return body;
}

async function perform(s: Step, uploads: Upload[]): Promise<void> {
  const pick = (i: number) => uploads[i % Math.max(1, uploads.length)];
  switch (s.kind) {
    case 'start': {
      const user = users[s.user]!;
      const orbit = orbits[s.user === 2 ? 1 : s.user === 1 ? 0 : s.orbit]!;
      const res = await startUploadRaw(t, user, orbit, s.size);
      const body = await expectStatusIn(res, [201, 413, 429], 'start');
      if (res.status === 201) {
        const { media_id, chunk_count } = JSON.parse(body);
        uploads.push({ id: media_id, user, size: s.size, chunks: chunk_count });
      }
      return;
    }
    case 'chunk':
    case 'fill': {
      const u = pick(s.upload);
      if (!u) return;
      for (let i = 0; i < u.chunks; i++) {
        if (s.kind === 'chunk' && i !== s.index % u.chunks) continue;
        const size = i < u.chunks - 1 ? CHUNK : u.size - CHUNK * (u.chunks - 1);
        await expectStatusIn(await putChunk(t, u.user, u.id, i, zeros.subarray(0, size)), [200, 404, 409, 410], 'chunk');
      }
      return;
    }
    case 'complete': {
      const u = pick(s.upload);
      if (u) await expectStatusIn(await complete(t, u.user, u.id), [200, 201, 404, 409, 410], 'complete');
      return;
    }
    case 'abort': {
      const u = pick(s.upload);
      if (u) await expectStatusIn(await t.fetch(`/api/media/upload/${u.id}`, { method: 'DELETE', headers: (s.byOwner ? users[0]! : u.user).auth }), [204, 404, 409, 410], 'abort');
      return;
    }
    case 'delete': {
      const u = pick(s.upload);
      if (u) await expectStatusIn(await t.fetch(`/api/media/${u.id}`, { method: 'DELETE', headers: (s.byOwner ? users[0]! : u.user).auth }), [204, 404, 410], 'delete');
      return;
    }
    case 'cleanup':
      await runCleanup(t.deps, { now: new Date(Date.now() + s.hoursAhead * 3600_000) });
      return;
    case 'limit':
      await t.sql('update group_quotas set bytes_limit = $2 where group_id = $1', [orbits[s.orbit], s.bytes]);
      return;
    case 'both':
      await Promise.all([perform(s.a, uploads), perform(s.b, uploads)]);
      return;
  }
}

async function quotaMismatches() {
  return t.sql(
    `select q.group_id, q.bytes_used, q.bytes_reserved, q.files_used, q.files_reserved, r.*
       from group_quotas q
       left join lateral (
         select coalesce(sum(size_bytes) filter (where status = 'complete'), 0) as rows_bytes_used,
                coalesce(sum(size_bytes) filter (where status = 'uploading'), 0) as rows_bytes_reserved,
                count(*) filter (where status = 'complete') as rows_files_used,
                count(*) filter (where status = 'uploading') as rows_files_reserved
           from media m where m.group_id = q.group_id) r on true
      where q.group_id = any($1::uuid[])
        and (q.bytes_used <> r.rows_bytes_used or q.bytes_reserved <> r.rows_bytes_reserved
             or q.files_used <> r.rows_files_used or q.files_reserved <> r.rows_files_reserved)`,
    [orbits],
  );
}

describe('media quota accounting', () => {
  it('every quota equals the sum of its rows after any sequence of start, chunk, complete, abort, delete and cleanup', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 30 }), async (steps) => {
        const uploads: Upload[] = [];
        for (const s of steps) {
          await perform(s, uploads);
          expect(await quotaMismatches(), JSON.stringify(s)).toEqual([]);
        }
      }),
      { numRuns: 25 },
    );
  }, 600_000);
});
