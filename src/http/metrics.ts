// GET /metrics and the per-request counter. The counter runs wherever the runtime supplies a
// Metrics port (Node with METRICS=on; Workers with an ANALYTICS binding); /metrics only where the
// port can be scraped and METRICS=on (Node); elsewhere it is an ordinary 404.
import { Hono, type Context, type Handler, type MiddlewareHandler } from 'hono';
import type { Deps } from '../deps';
import { sha256 } from '../domain/bytes';
import { AppError } from '../domain/errors';
import { refusalLimit } from '../domain/limit-metrics';
import type { AppEnv } from './env';
import { onError, sendError } from './errors';

// Anything else is one label value, so a client cannot mint new series by inventing methods.
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Counts every answered request by method, route template and status, with its duration; and rate-limit refusals by limit. */
export const requestMetrics: MiddlewareHandler<AppEnv> = async (c, next) => {
  const metrics = c.get('deps').metrics;
  if (!metrics) return next();
  const started = performance.now();
  await next();
  metrics.request(METHODS.has(c.req.method) ? c.req.method : 'OTHER', c.req.routePath, c.res.status, (performance.now() - started) / 1000);
  if (c.error instanceof AppError && c.error.code === 'RATE_LIMITED') metrics.rateLimited(refusalLimit(c.error));
};

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

async function sameSecret(given: string, expected: string): Promise<boolean> {
  // Digests first: the comparison then takes the same time whatever the lengths.
  const [a, b] = await Promise.all([sha256(given), sha256(expected)]);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * With METRICS_TOKEN: the bearer token, from anywhere. Without: on the main port only loopback
 * clients not relayed by a proxy; on METRICS_PORT whoever reaches it (bind or firewall it).
 */
async function allowed(c: Context<AppEnv>, deps: Deps, ownPort: boolean): Promise<void> {
  const token = deps.config.METRICS_TOKEN;
  if (token) {
    const given = /^Bearer (.+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    if (given === undefined || !(await sameSecret(given, token))) throw new AppError('UNAUTHENTICATED', 'Send the metrics token as a bearer token.');
    return;
  }
  if (ownPort) return;
  const relayed = c.req.header('x-forwarded-for') !== undefined || c.req.header('forwarded') !== undefined;
  if (relayed || !LOOPBACK.test(deps.clientIp(c))) throw new AppError('FORBIDDEN', 'Metrics answer only to loopback clients unless METRICS_TOKEN is set.');
}

function metricsEndpoint(ownPort: boolean): Handler<AppEnv> {
  return async (c) => {
    const deps = c.get('deps');
    const scrape = deps.metrics?.scrape?.bind(deps.metrics);
    const served = deps.config.METRICS && scrape && (ownPort || deps.config.METRICS_PORT === undefined);
    if (!served) throw new AppError('NOT_FOUND', 'No such route.');
    await allowed(c, deps, ownPort);
    const { contentType, body } = await scrape();
    return c.body(body, 200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' });
  };
}

/** The route on the API's own port. */
export const mainPortMetrics = metricsEndpoint(false);

/** The app behind METRICS_PORT: /metrics and nothing else. */
export function createMetricsApp(deps: Deps) {
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    c.set('deps', deps);
    c.set('requestId', crypto.randomUUID());
    await next();
  });
  app.get('/metrics', metricsEndpoint(true));
  app.notFound((c) => sendError(c, new AppError('NOT_FOUND', 'No such route.')));
  app.onError(onError);
  return app;
}
