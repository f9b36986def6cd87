// createApp: the whole HTTP API as one Hono app built from ports. Both runtimes serve it.
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { cors } from 'hono/cors';
import { methodNotAllowed } from 'hono/method-not-allowed';
import { requestId } from 'hono/request-id';
import type { Deps } from './deps';
import { AppError } from './domain/errors';
import type { AppEnv } from './http/env';
import { databaseUnavailableError, onError, sendError } from './http/errors';
import { accessLog } from './http/access-log';
import { mainPortMetrics, requestMetrics } from './http/metrics';
import { OPENAPI_DOCUMENT, registerOpenApiComponents } from './http/openapi';
import { securityHeaders } from './http/security-headers';
import { validationHook } from './http/validation';
import { registerRoutes } from './routes';

/** Deps for every request (Node), or built per request (Workers: I/O objects cannot outlive a request). */
export type DepsSource = Deps | ((c: Context<AppEnv>) => Deps);

export function createApp(source: DepsSource) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.use(requestId({ limitLength: 64 }));
  app.use(async (c, next) => {
    c.set('deps', typeof source === 'function' ? source(c) : source);
    await next();
  });
  app.use(accessLog);
  app.use(requestMetrics);
  app.use(securityHeaders);
  const corsHeaders = cors({
    origin: (origin, c: Context<AppEnv>) => (c.get('deps').config.CORS_ORIGINS.includes(origin) ? origin : null),
    allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Chunk-SHA256', 'Range', 'If-Range', 'If-None-Match'],
    exposeHeaders: ['X-Request-Id', 'Retry-After', 'ETag', 'Content-Range', 'Content-Disposition'],
    maxAge: 600,
  });
  app.use(async (c, next) => {
    // Only browsers send Origin; other clients skip the CORS work and its after-response edits.
    if (c.req.header('origin') !== undefined) return corsHeaders(c, next);
    c.header('Vary', 'Origin');
    await next();
  });
  app.use(async (c, next) => {
    // Tables missing would make every query a 500; a balancer reading /ready stays away meanwhile.
    if (c.get('deps').databasePending?.() && c.req.path !== '/health') return sendError(c, databaseUnavailableError());
    await next();
  });
  app.use(
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) => {
        c.header('Allow', methods.join(', '));
        return sendError(c, new AppError('METHOD_NOT_ALLOWED', `Use ${methods.join(', ')} on this path.`));
      },
    }),
  );

  registerRoutes(app);
  app.get('/metrics', mainPortMetrics);

  registerOpenApiComponents(app);
  app.doc31('/openapi.json', OPENAPI_DOCUMENT);

  app.notFound((c) => sendError(c, new AppError('NOT_FOUND', 'No such route.')));
  app.onError(onError);
  return app;
}

export type App = ReturnType<typeof createApp>;
