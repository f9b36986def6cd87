// The Workers entry: the same app in `fetch`, cleanup in `scheduled`, the orbit Durable Object.
import type { ExecutionContext, ScheduledController } from '@cloudflare/workers-types';
import { createApp } from '../app';
import type { Deps } from '../deps';
import type { AppEnv } from '../http/env';
import { runCleanup } from '../domain/cleanup';
import { buildWorkerDeps, ensureMigrated, type WorkerEnv } from './worker-deps';

export { OrbitRoom } from './orbit-room';

const DEPS = '__orbitalDeps';
const app = createApp((c) => (c.env as AppEnv['Bindings'])[DEPS] as Deps);

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: ExecutionContext): Promise<Response> {
    const deps = buildWorkerDeps(env, ctx);
    try {
      // A database that is down must not take /health with it: /ready reports it as 503.
      await ensureMigrated(deps).catch(() => undefined);
      return await app.fetch(request, { ...env, [DEPS]: deps }, ctx as never);
    } finally {
      ctx.waitUntil(deps.release());
    }
  },

  async scheduled(controller: ScheduledController, env: WorkerEnv, ctx: ExecutionContext): Promise<void> {
    const deps = buildWorkerDeps(env, ctx);
    try {
      await ensureMigrated(deps);
      // Storage calls per invocation are limited on Workers: the rest of the queue waits an hour.
      const report = await runCleanup(deps, { now: new Date(controller.scheduledTime), blobLimit: 500 });
      deps.metrics?.cleanupRun(report);
    } finally {
      await deps.release();
    }
  },
};
