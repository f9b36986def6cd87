// Service routes: liveness, readiness, public configuration, the docs page.
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { sql } from 'drizzle-orm';
import { doneWithin } from '../../domain/deadline';
import { AppError } from '../../domain/errors';
import type { AppEnv } from '../../http/env';
import { defineRoute } from '../../http/route';

/** How long /ready waits for the database and the blob store. */
const READY_WITHIN_MS = 5000;

const health = defineRoute({
  method: 'get',
  path: '/health',
  operationId: 'service.health',
  public: true,
  tags: ['service'],
  summary: 'The process is up',
  responses: { 200: { description: 'up', content: { 'application/json': { schema: z.object({ status: z.literal('ok') }) } } } },
});

const ready = defineRoute({
  method: 'get',
  path: '/ready',
  operationId: 'service.ready',
  public: true,
  tags: ['service'],
  summary: 'Database and blob store are reachable',
  responses: {
    200: { description: 'ready', content: { 'application/json': { schema: z.object({ status: z.literal('ready') }) } } },
    503: { description: 'the database or the blob store is not reachable' },
  },
});

const ConfigSchema = z
  .object({
    registration: z.enum(['open', 'invite', 'closed']),
    chunk_size: z.number().int(),
    max_media_bytes: z.number().int(),
    media_retention_days: z.number().int(),
    message_retention_days: z.number().int(),
    max_members: z.number().int(),
    max_owned_groups: z.number().int(),
    invite_code_length: z.number().int(),
  })
  .openapi('ServerConfig');

const config = defineRoute({
  method: 'get',
  path: '/api/config',
  operationId: 'service.config',
  public: true,
  tags: ['service'],
  summary: 'Public server configuration for clients',
  responses: { 200: { description: 'configuration', content: { 'application/json': { schema: ConfigSchema } } } },
});

export function register(app: OpenAPIHono<AppEnv>) {
  app.openapi(health, (c) => c.json({ status: 'ok' as const }, 200));

  app.openapi(ready, async (c) => {
    const { db, blobs } = c.get('deps');
    // Bounded: a database behind a partition answers nothing for the pool's 35 s, and a readiness
    // probe that times out tells the balancer less than a 503 does.
    if (!(await doneWithin(Promise.all([db.execute(sql`select 1`), blobs.ping()]), READY_WITHIN_MS))) {
      throw new AppError('UNAVAILABLE', 'The database or the blob store is not reachable.');
    }
    return c.json({ status: 'ready' as const }, 200);
  });

  app.openapi(config, (c) => {
    const cfg = c.get('deps').config;
    return c.json(
      {
        registration: cfg.REGISTRATION,
        chunk_size: cfg.chunkSize,
        max_media_bytes: cfg.MAX_MEDIA_BYTES,
        media_retention_days: cfg.MEDIA_RETENTION_DAYS,
        message_retention_days: cfg.MESSAGE_RETENTION_DAYS,
        max_members: cfg.MAX_MEMBERS,
        max_owned_groups: cfg.MAX_OWNED_GROUPS,
        invite_code_length: cfg.inviteCodeLength,
      },
      200,
    );
  });
}
