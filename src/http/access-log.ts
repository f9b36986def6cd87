import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './env';

/**
 * One structured line per request: never headers, bodies or query strings (tickets live there),
 * and no user or resource ids — who did what, when, is exactly what the contract says is never logged.
 */
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
  });
};
