import type { MiddlewareHandler } from 'hono';
import { limitKey, limits } from '../domain/limits';
import { consume } from '../domain/rate-limit';
import type { AppEnv } from './env';

/** Per-user write budgets, by count and by declared bytes; applied to every authenticated write. */
export const writeLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
  const deps = c.get('deps');
  if (deps.limiter.enabled) {
    const { userId } = c.get('auth');
    const budget = limits(deps.config);
    const bytes = Number(c.req.header('content-length') ?? 0) || 0;
    await consume(deps.limiter, deps.clock, [
      { key: limitKey.writes(userId), window: budget.writesPerUser },
      ...(bytes > 0 ? [{ key: limitKey.writeBytes(userId), window: budget.writeBytesPerUser, cost: bytes }] : []),
    ]);
  }
  await next();
};
