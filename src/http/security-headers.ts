// Headers every answer carries: nosniff always, HSTS when the client reached us over TLS (the
// request URL is https — Workers, or a Node server with TLS — or a trusted proxy says so).
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from './env';

/** One year; no includeSubDomains: a self-hoster's other hosts are not ours to pin. */
export const HSTS = 'max-age=31536000';

function overTls(c: Context<AppEnv>): boolean {
  if (c.req.url.startsWith('https:')) return true;
  return c.get('deps').config.TRUST_PROXY && c.req.header('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https';
}

export const securityHeaders: MiddlewareHandler<AppEnv> = async (c, next) => {
  // Set before the handler runs: a header set after the response exists makes Hono rebuild the
  // response, and the Node adapter then streams it instead of writing it in one go (a third of
  // the thread list's throughput).
  const hsts = overTls(c);
  c.header('X-Content-Type-Options', 'nosniff');
  if (hsts) c.header('Strict-Transport-Security', HSTS);
  await next();
  // Only a handler that returned its own Response object skipped the prepared headers.
  if (!c.res.headers.has('X-Content-Type-Options')) {
    c.header('X-Content-Type-Options', 'nosniff');
    if (hsts) c.header('Strict-Transport-Security', HSTS);
  }
};
