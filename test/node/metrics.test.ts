// GET /metrics on the Node server as `npm start` runs it (off by default: test/api/metrics-off): its guards, and
// label values that never carry user ids, orbit ids or usernames.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTarget } from '#target';
import { PromMetrics } from '../../src/adapters/metrics-prom';
import { limitKey } from '../../src/domain/limits';
import { scheduleCleanup } from '../../src/runtime/node-cleanup';
import { limitName } from '../../src/domain/limit-metrics';
import { b64, createOrbit, post, registerUser } from '../support/api';
import { uploadFile } from '../support/media';
import { livePath, seqsUntil } from '../support/live';
import { connectSocket } from '../support/node-target';
import { targetOf, freshDatabase, startServerProcess, type ServerProcess } from '../support/server-process';
import { TEST_ENV } from '../support/types';
import { newDataDir } from '../support/data-dirs';

const postgres = process.env.TEST_DATABASE_URL;

/** One server process on its own data dir (and its own Postgres database when TEST_DATABASE_URL is set). */
async function server(env: Record<string, string>) {
  const dataDir = newDataDir('orbital-metrics-');
  const database = postgres ? await freshDatabase(postgres, 'orbital_metrics') : undefined;
  const proc = await startServerProcess({ ...TEST_ENV, LOG_LEVEL: 'info', DATA_DIR: dataDir, ...(database ? { DATABASE_URL: database.url } : {}), ...env });
  return {
    proc,
    async stop() {
      await proc.kill('SIGTERM');
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The value of one sample line, e.g. sample(text, 'orbital_live_sockets_open'). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('rate-limit label values', () => {
  it('name the limit, never the username, user id or address in its key', () => {
    for (const [name, build] of Object.entries(limitKey)) {
      const key = (build as (id: string) => string)('Secret_Alice');
      expect(limitName(key)).toBe(name);
    }
    expect(limitName('something:else')).toBe('other');
  });
});

describe('GET /metrics with METRICS=on and no token', () => {
  let s: Awaited<ReturnType<typeof server>>;
  beforeAll(async () => (s = await server({ METRICS: 'on', RATE_LIMIT: 'on' })));
  afterAll(() => s?.stop());

  it('answers loopback clients and refuses requests relayed by a proxy', async () => {
    const ok = await fetch(s.proc.url + '/metrics');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toContain('text/plain');
    expect(await ok.text()).toContain('# TYPE orbital_http_requests_total counter');
    const relayed = await fetch(s.proc.url + '/metrics', { headers: { 'X-Forwarded-For': '203.0.113.9' } });
    expect(relayed.status).toBe(403);
    expect((await relayed.json()).error.code).toBe('FORBIDDEN');
  });

  it('counts requests by route template, sockets, fan-out and refusals, and no label value is an id or a name', async () => {
    const t = targetOf(s.proc);
    const owner = await registerUser(t, { username: `MetricsOwner_${Date.now()}` });
    const member = await registerUser(t, { username: `MetricsMember_${Date.now()}` });
    const orbit = await createOrbit(t, owner);
    expect((await t.fetch(`/api/groups/${orbit.id}`, { headers: owner.auth })).status).toBe(200);
    expect((await t.fetch('/api/groups/join', { ...post({ invite_code: orbit.inviteCode }), headers: { ...member.auth, 'Content-Type': 'application/json' } })).status).toBe(200);
    const strayPath = `/api/no-such-${owner.id}`;
    expect((await t.fetch(strayPath)).status).toBe(404);
    // Failed joins: the per-user budget (20 an hour) refuses the 21st.
    const statuses: number[] = [];
    for (let i = 0; i < 22; i++) {
      const res = await t.fetch('/api/groups/join', { ...post({ invite_code: 'ZZZZZZZZ' }), headers: { ...owner.auth, 'Content-Type': 'application/json' } });
      statuses.push(res.status);
    }
    expect(statuses).toContain(429);
    const socket = await connectSocket(s.proc.url, livePath(orbit.id), owner.auth);
    // One event through the socket: the fan-out lag is observed once for it.
    const thread = await t.fetch('/api/threads', post({ group_id: orbit.id, key_epoch: 1, encrypted_title: b64(24), encrypted_body: b64(40) }, owner.auth));
    expect(thread.status).toBe(201);
    const { seq } = (await t.fetch(`/api/groups/${orbit.id}/events?limit=100`, { headers: owner.auth }).then((r) => r.json())).items.at(-1);
    await seqsUntil(socket, seq);

    const text = await (await fetch(s.proc.url + '/metrics')).text();
    expect(text).toMatch(/orbital_http_requests_total\{method="GET",route="\/api\/groups\/:groupId",status="200"\} 1/);
    expect(text).toMatch(/orbital_http_request_duration_seconds_count\{method="POST",route="\/api\/auth\/register"\} 2/);
    expect(text).toMatch(/orbital_rate_limit_refusals_total\{limit="joinUser"\} [1-9]/);
    expect(sample(text, 'orbital_live_sockets_open')).toBe(1);
    expect(sample(text, 'orbital_events_fanned_out_total')).toBeGreaterThan(0);
    expect(sample(text, 'orbital_fanout_lag_seconds_count')).toBe(1);
    expect(sample(text, 'orbital_fanout_lag_seconds_sum')).toBeLessThan(5);
    expect(sample(text, 'orbital_uploads_in_progress')).toBe(0);
    if (postgres) expect(sample(text, 'orbital_db_pool_in_use')).toBeGreaterThanOrEqual(0);

    const labelValues = [...text.matchAll(/="([^"]*)"/g)].map((m) => m[1]!);
    for (const secret of [owner.id, member.id, orbit.id, owner.username, member.username, strayPath]) {
      expect(labelValues.filter((v) => v.toLowerCase().includes(secret.toLowerCase()))).toEqual([]);
      expect(text.toLowerCase()).not.toContain(secret.toLowerCase());
    }
    socket.close();
  });
});

describe('GET /metrics with METRICS_TOKEN on its own METRICS_PORT', () => {
  const token = 'metrics-token-0123456789';
  let s: Awaited<ReturnType<typeof server>>;
  let metricsUrl: string;
  beforeAll(async () => {
    s = await server({ METRICS: 'on', METRICS_TOKEN: token, METRICS_PORT: '0' });
    // Logged once the migrations have run, in a batch (up to 100 ms late): not always out by /ready's 200.
    const line = await vi.waitFor(
      () => {
        const found = s.proc.output().split('\n').find((l) => l.includes('"msg":"metrics listening"'));
        if (!found) throw new Error('no "metrics listening" line yet');
        return found;
      },
      { timeout: 10_000, interval: 20 },
    );
    metricsUrl = JSON.parse(line).url;
  });
  afterAll(() => s?.stop());

  it('is not on the API port', async () => {
    const res = await fetch(s.proc.url + '/metrics', { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(404);
  });

  it('wants the bearer token, and only that token', async () => {
    const missing = await fetch(metricsUrl);
    expect(missing.status).toBe(401);
    expect((await missing.json()).error.code).toBe('UNAUTHENTICATED');
    expect((await fetch(metricsUrl, { headers: { Authorization: `Bearer ${token}x` } })).status).toBe(401);
    const ok = await fetch(metricsUrl, { headers: { Authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('orbital_live_sockets_open 0');
    expect((await fetch(metricsUrl.replace('/metrics', '/api/config'))).status).toBe(404);
  });
});

describe('cleanup counters', () => {
  it('count each scheduled run and what it removed, by kind', async () => {
    const t = await createTarget();
    try {
      const owner = await registerUser(t);
      const orbit = await createOrbit(t, owner);
      const { mediaId } = await uploadFile(t, owner, orbit.id, 10);
      await t.sql(`update media set expires_at = now() - interval '1 second' where id = $1`, [mediaId]);
      const metrics = new PromMetrics({ processMetrics: false });
      const schedule = scheduleCleanup({ ...t.deps, metrics }, { useLock: Boolean(t.databaseUrl), firstAfterMs: 10 });
      await expect.poll(async () => sample((await metrics.scrape()).body, 'orbital_cleanup_runs_total'), { timeout: 15_000 }).toBe(1);
      await schedule.stop();
      expect((await metrics.scrape()).body).toContain('orbital_cleanup_removed_total{kind="media_expired"} 1');
    } finally {
      await t.close();
    }
  });
});
