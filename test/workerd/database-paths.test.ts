// The Worker's two database paths: the Neon driver (WebSockets; DATABASE_URL) and node-postgres
// over a Hyperdrive binding (TCP; miniflare points it at the same database). The same requests
// must behave the same on both; the round trips each costs are counted at the proxies in front of
// the database and printed (docs/CAPACITY.md, "Workers database paths", records them).
import { env } from 'cloudflare:test';
import { afterAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { b64, createInvite, createOrbit, deliverKey, expectStatus, json, post, registerUser, type TestUser } from '../support/api';
import { newReply, newThread } from '../support/content';
import { randomIp } from '../support/orbits';
import { uploadFile } from '../support/media';
import type { Target } from '../support/types';

type Counts = Record<string, { connections: number; roundTrips: number }>;
const meter = env.ROUND_TRIP_METER as string;
const resetMeter = async () => void (await (await fetch(meter, { method: 'POST' })).text());
const readMeter = async () => (await (await fetch(meter)).json()) as Counts;

const PATHS = {
  neon: {},
  hyperdrive: { HYPERDRIVE: env.TEST_HYPERDRIVE },
} as const;

const table: Record<string, Record<string, string>> = {};
afterAll(() => console.log(`database round trips per request (connections / round trips)\n${JSON.stringify(table, null, 1)}`));

describe.each(Object.keys(PATHS) as Array<keyof typeof PATHS>)('the %s path', (path) => {
  const other = path === 'neon' ? 'hyperdrive' : 'neon';
  let t: Target;

  /** Runs one request's worth of work and records the round trips it cost on this path. */
  async function metered<T>(step: string, work: () => Promise<T>): Promise<T> {
    await resetMeter();
    const result = await work();
    const counts = await readMeter();
    // Every query of the request went through this path's connection, none through the other.
    expect(counts[other], `${step} used the ${other} path`).toBeUndefined();
    // One connection per request: the pool is not opening one per query.
    expect(counts[path]?.connections, `${step}: connections`).toBe(1);
    (table[step] ??= {})[path] = `${counts[path]!.connections} / ${counts[path]!.roundTrips}`;
    return result;
  }

  it('serves the contract: register, orbit, join, thread, reply, message, media, listings', async () => {
    // Rate limits on, as deployed: the limiter's own queries count.
    t = await createTarget({ bindings: PATHS[path], env: { RATE_LIMIT: 'on' } });
    // The isolate's first request also checks the migrations: keep that out of the counts.
    await t.fetch('/ready');
    const ready = await metered('GET /ready', () => t.fetch('/ready'));
    expect(ready.status).toBe(200);
    const owner = await metered('POST /api/auth/register', () => registerUser(t, { ip: randomIp() }));
    const member = await registerUser(t, { ip: randomIp() });
    const orbit = await metered('POST /api/groups', () => createOrbit(t, owner));
    const code = await metered('POST /api/groups/{id}/invites', () => createInvite(t, owner, orbit.id));
    await metered('POST /api/groups/join', async () => expectStatus(await t.fetch('/api/groups/join', post({ invite_code: code }, member.auth)), 200));
    await metered('PUT /api/groups/{id}/members/{id}/keys', () => deliverKey(t, owner, orbit.id, member.id));
    const thread = await metered('POST /api/threads', () => newThread(t, member, orbit.id));
    const reply = await metered('POST /api/threads/{id}/replies', () => newReply(t, owner, thread.id));
    const message = await metered('POST /api/groups/{id}/messages', async () =>
      json(await expectStatus(await t.fetch(`/api/groups/${orbit.id}/messages`, post({ key_epoch: 1, envelope: b64(200) }, member.auth)), 201)),
    );
    const listed = await metered('GET /api/groups/{id}/threads', () => getOk(t, owner, `/api/groups/${orbit.id}/threads`));
    expect(listed.items.map((item: { id: string }) => item.id)).toEqual([thread.id]);
    const replies = await metered('GET /api/threads/{id}/replies', () => getOk(t, member, `/api/threads/${thread.id}/replies`));
    expect(replies.items.map((item: { id: string }) => item.id)).toEqual([reply.id]);
    const events = await metered('GET /api/groups/{id}/events', () => getOk(t, member, `/api/groups/${orbit.id}/events`));
    expect(events.items.map((e: { seq: number }) => e.seq)).toContain(message.seq);
    await metered('GET /api/users/me', () => getOk(t, owner, '/api/users/me'));
    const media = await uploadFile(t, member, orbit.id, 4096);
    const download = await metered('GET /api/media/{id}/download (Range)', () => t.fetch(`/api/media/${media.mediaId}/download`, { headers: { ...member.auth, range: 'bytes=0-99' } }));
    expect(download.status).toBe(206);
    expect((await download.arrayBuffer()).byteLength).toBe(100);
  });

  it('rolls a failed transaction back', async () => {
    // A join with a used-up invite fails inside its transaction: nothing of it may remain.
    const owner = await registerUser(t, { ip: randomIp() });
    const orbit = await createOrbit(t, owner);
    const code = await createInvite(t, owner, orbit.id, { max_uses: 1 });
    const first = await registerUser(t, { ip: randomIp() });
    const second = await registerUser(t, { ip: randomIp() });
    await expectStatus(await t.fetch('/api/groups/join', post({ invite_code: code }, first.auth)), 200);
    const refused = await t.fetch('/api/groups/join', post({ invite_code: code }, second.auth));
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(await t.sql('select user_id from group_members where group_id = $1 order by joined_at', [orbit.id])).toHaveLength(2);
  });
});

async function getOk(t: Target, user: TestUser, path: string) {
  return json(await expectStatus(await t.fetch(path, { headers: user.auth }), 200));
}
