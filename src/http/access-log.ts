import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './env';

/** One structured line per request: never headers, bodies or query strings (tickets live there). */
export const accessLog: MiddlewareHandler<AppEnv> = async (c, next) => {
  const started = performance.now();
  await next();
  c.get('deps').logger.log('info', {
    msg: 'request',
    request_id: c.get('requestId'),
    method: c.req.method,
    route: c.req.routePath,
    status: c.res.status,
    duration_ms: Math.round((performance.now() - started) * 10) / 10,
    user_id: c.get('auth')?.userId,
  });
};
