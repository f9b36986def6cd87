// Fuzzing every route with fast-check (requests from test/support/fuzz.ts): whatever arrives, the
// answer is never a 5xx, errors keep the contract's shape and status-code pairing, and no body
// shows a stack, SQL or an internal error name. Routes that destroy the fuzz world's records run
// last, so the others keep reaching deep into their handlers. FUZZ_RUNS=n sets runs per route (Node);
// FUZZ_SEED and FUZZ_PATH from a failure replay it (with -t to pick the route).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { createInvite } from '../support/api';
import { AUTHZ_ROWS, buildWorld, loginTokens, type World } from '../support/authz-table';
import { asciiHeadersOnly, describeRequest, problemWith, requestFor, type Ids, type OpenApiDoc } from '../support/fuzz';
import { CHUNK, startUpload } from '../support/media';
import { claimsOf } from '../support/tokens';
import type { Target } from '../support/types';

let t: Target;
let w: World;
let doc: OpenApiDoc;
let ids: Ids;

beforeAll(async () => {
  t = await createTarget();
  if (t.name === 'workerd') asciiHeadersOnly();
  w = await buildWorld(t);
  doc = (await (await t.fetch('/openapi.json')).json()) as OpenApiDoc;
  const { owner, member, pending, nonMember } = w.users;
  const uploads = [await startUpload(t, owner, w.orbit.id, 100), await startUpload(t, owner, w.orbit.id, CHUNK + 50)];
  ids = {
    groupIds: [w.orbit.id, w.elsewhere.id],
    threadIds: [w.thread.id],
    replyIds: [w.reply.id],
    mediaIds: [w.mediaId, ...uploads.map((u) => u.media_id)],
    userIds: [owner.id, member.id, pending.id, nonMember.id],
    // Other sessions of theirs: revoking the ones the fuzzer signs in with would end the run early.
    sessionIds: [claimsOf((await loginTokens(t, owner)).access).sid, claimsOf((await loginTokens(t, member)).access).sid],
    inviteCode: await createInvite(t, owner, w.orbit.id, { max_uses: 1000 }),
    refreshToken: w.spare.refresh,
  };
});
afterAll(() => t?.close());

const runs = () => Number(process.env.FUZZ_RUNS ?? (t.name === 'workerd' ? 12 : 25));
/** FUZZ_SEED (and FUZZ_PATH) from a failure report replay that run. */
const replay = () => (process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED), path: process.env.FUZZ_PATH } : {});

/** Calls that end records, sessions or memberships other routes are fuzzed with go last. */
const destructive = (route: string) => route.startsWith('DELETE') || route === 'PUT /api/users/me/public-key' || route === 'POST /api/auth/logout';
const routes = [...AUTHZ_ROWS.map((r) => r.route)].sort((a, b) => Number(destructive(a)) - Number(destructive(b)));

describe('fuzzing every route', () => {
  for (const route of routes) {
    it(route, async () => {
      const [method, path] = route.split(' ') as [string, string];
      await fc.assert(
        fc.asyncProperty(requestFor(doc, w, ids, method.toLowerCase(), path), async (r) => {
          const res = await t.fetch(r.path, { method: r.method, headers: r.headers, body: r.body as BodyInit | undefined });
          const text = await res.text();
          const problem = problemWith(res, text);
          if (problem) throw new Error(`${problem}\n    request: ${describeRequest(r)}`);
        }),
        { numRuns: runs(), ...replay() },
      );
    });
  }

  it('left no prototype polluted', () => {
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'd')).toBe(false);
  });
});
