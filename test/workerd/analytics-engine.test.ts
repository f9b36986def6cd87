// Workers Analytics Engine: with an ANALYTICS dataset bound, the Worker (and the orbit's Durable
// Object) write the counters Node serves at /metrics as data points. Miniflare's local dataset takes
// writes and drops them (only a remote binding stores them), so the real binding is tapped here to
// see what was written.
import { env, runInDurableObject } from 'cloudflare:test';
import type { AnalyticsEngineDataPoint, AnalyticsEngineDataset } from '@cloudflare/workers-types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { roomStub } from '../../src/adapters/fanout-do';
import type { WorkerEnv } from '../../src/runtime/worker-deps';
import { createOrbit, post, registerUser } from '../support/api';
import { newThread } from '../support/content';
import { livePath, openLive, readUntil } from '../support/live';
import type { Target } from '../support/types';

const real = env.TEST_ANALYTICS as AnalyticsEngineDataset;
const written: AnalyticsEngineDataPoint[] = [];
const ANALYTICS: AnalyticsEngineDataset = {
  writeDataPoint(point) {
    written.push(structuredClone(point!));
    real.writeDataPoint(point);
  },
};
const kind = (k: string) => written.filter((p) => p.blobs?.[0] === k);
const total = (k: string) => kind(k).reduce((sum, p) => sum + p.doubles![0]!, 0);
const ip = () => `198.51.100.${Math.floor(Math.random() * 250) + 1}`;

describe('Workers Analytics Engine (an ANALYTICS binding)', () => {
  let t: Target;
  beforeAll(async () => {
    expect(typeof real?.writeDataPoint).toBe('function'); // miniflare's own local dataset
    t = await createTarget({ bindings: { ANALYTICS }, env: { RATE_LIMIT: 'on' } });
  });
  let room: unknown;
  afterAll(async () => {
    if (room) await runInDurableObject(room, (instance: { env: WorkerEnv }) => void delete instance.env.ANALYTICS);
    await t?.close();
  });

  it('gets requests by route template, refusals, sockets, fan-out and cleanup, within the dataset’s limits and without ids or names', async () => {
    const owner = await registerUser(t, { ip: ip() });
    const orbit = await createOrbit(t, owner);
    expect((await t.fetch(`/api/groups/${orbit.id}`, { headers: owner.auth })).status).toBe(200);
    const stray = `/api/no-such-${owner.id}`;
    expect((await t.fetch(stray)).status).toBe(404);
    const joinFrom = ip();
    const statuses: number[] = [];
    for (let i = 0; i < 21; i++) statuses.push((await t.fetch('/api/groups/join', { ...post({ invite_code: 'ZZZZZZZZ' }, owner.auth), ip: joinFrom })).status);
    expect(statuses.at(-1)).toBe(429);

    const { socket } = await openLive(t, livePath(orbit.id), owner.auth);
    // The room is its own object with its own env: tap the binding there too (it closes sockets).
    room = roomStub((env as unknown as WorkerEnv).ORBIT_ROOM, orbit.id);
    await runInDurableObject(room, (instance: { env: WorkerEnv }) => {
      instance.env.ANALYTICS = ANALYTICS;
    });
    const thread = await newThread(t, owner, orbit.id);
    await readUntil(socket, (f) => f?.type === 'thread_created' && f.data?.id === thread.id);
    socket.close(1000, 'done');
    await expect.poll(() => total('socket_closed'), { timeout: 10_000 }).toBe(1);
    await t.cleanup();

    const requests = kind('request').map((p) => p.blobs!.slice(1));
    expect(requests).toContainEqual(['POST', '/api/auth/register', '201']);
    expect(requests).toContainEqual(['GET', '/api/groups/:groupId', '200']);
    expect(requests.filter(([, route, status]) => route === '/api/groups/join' && status === '429')).toHaveLength(1);
    expect(kind('request').every((p) => p.doubles![0] === 1 && p.doubles![1]! >= 0)).toBe(true);
    expect(kind('rate_limited').map((p) => p.blobs![1])).toEqual(['joinUser']);
    expect(total('socket_opened')).toBe(1);
    expect(total('events_fanned_out')).toBeGreaterThanOrEqual(1); // the thread's
    expect(total('cleanup_run')).toBe(1);

    for (const p of written) {
      expect(p.indexes).toEqual([p.blobs![0]]);
      expect(new TextEncoder().encode(String(p.indexes![0])).length).toBeLessThanOrEqual(96);
      expect(p.blobs!.length).toBeLessThanOrEqual(20);
      expect(p.doubles!.length).toBeLessThanOrEqual(20);
      expect(new TextEncoder().encode(p.blobs!.join('')).length).toBeLessThanOrEqual(16 * 1024);
      expect(p.doubles!.every(Number.isFinite)).toBe(true);
    }
    const text = JSON.stringify(written).toLowerCase();
    for (const secret of [owner.id, orbit.id, owner.username, thread.id, stray]) expect(text).not.toContain(secret.toLowerCase());
  });
});
