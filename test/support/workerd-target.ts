// The workerd target: requests go through the Worker's own fetch handler inside workerd, with
// the real bindings (Durable Object namespace, R2) and Postgres through the Neon driver.
import { createExecutionContext, createScheduledController, env, runDurableObjectAlarm, waitOnExecutionContext } from 'cloudflare:test';
import worker from '../../src/runtime/worker';
import { buildWorkerDeps, type WorkerEnv } from '../../src/runtime/worker-deps';
import { roomStub } from '../../src/adapters/fanout-do';
import { openNeon } from '../../src/adapters/db-neon';
import { queueSocket } from './socket-queue';
import { SocketRefused, TEST_ENV, type Target, type TargetOptions } from './types';

export const targetName = 'workerd' as const;

export async function createTarget(options: TargetOptions = {}): Promise<Target> {
  const bindings = env as unknown as WorkerEnv;
  const vars = { ...TEST_ENV, ...options.env };
  const workerEnv = { ...bindings, ...options.bindings, ...vars } as WorkerEnv;

  async function call(request: Request): Promise<Response> {
    const ctx = createExecutionContext();
    const res = await worker.fetch(request, workerEnv, ctx as never);
    // Deferred work (fan-out, releasing the pool) finishes before the test goes on.
    await waitOnExecutionContext(ctx);
    return res;
  }

  return {
    name: 'workerd',
    env: vars,
    fetch(path, init = {}) {
      const { ip, ...rest } = init;
      const headers = new Headers(rest.headers);
      headers.set('cf-connecting-ip', ip ?? '203.0.113.1');
      return call(new Request(`https://orbital.test${path}`, { ...rest, headers }));
    },
    async sql<T>(text: string, params?: unknown[]) {
      const handle = openNeon(bindings.DATABASE_URL, { wsProxy: bindings.DB_WS_PROXY });
      try {
        return (await handle.pool.query(text, params)).rows as T[];
      } finally {
        await handle.close();
      }
    },
    async cleanup(opts = {}) {
      const ctx = createExecutionContext();
      const controller = createScheduledController({ scheduledTime: opts.now ?? new Date(), cron: '17 * * * *' });
      await worker.scheduled(controller as never, workerEnv, ctx as never);
      await waitOnExecutionContext(ctx);
    },
    async socket(path, headers = {}) {
      const res = await call(new Request(`https://orbital.test${path}`, { headers: { ...headers, Upgrade: 'websocket', 'cf-connecting-ip': '203.0.113.1' } }));
      const ws = (res as unknown as { webSocket: WebSocket | null }).webSocket;
      if (res.status !== 101 || !ws) throw new SocketRefused(res.status, await res.text());
      (ws as unknown as { accept(): void }).accept();
      return queueSocket(ws as never);
    },
    async withDeps(work) {
      const ctx = createExecutionContext();
      const deps = buildWorkerDeps(workerEnv, ctx);
      try {
        return await work(deps);
      } finally {
        await deps.release();
        await waitOnExecutionContext(ctx);
      }
    },
    async runLiveChecks(groupId) {
      await runDurableObjectAlarm(roomStub(bindings.ORBIT_ROOM, groupId));
    },
    async blobKeys(prefix = '') {
      const listed = await bindings.MEDIA.list({ prefix });
      return listed.objects.map((o) => o.key);
    },
    async close() {},
  };
}
