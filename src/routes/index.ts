// Every resource folder registers its routes here. Order matters only where paths overlap:
// fixed segments (e.g. /api/groups/join) are registered before parameters.
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../http/env';
import * as auth from './auth';
import * as docs from './docs';
import * as events from './events';
import * as groups from './groups';
import * as messages from './messages';
import * as live from './live';
import * as media from './media';
import * as service from './service';
import * as threads from './threads';
import * as users from './users';

const resources = [service, docs, auth, users, groups, threads, messages, events, media, live];

export function registerRoutes(app: OpenAPIHono<AppEnv>): void {
  for (const resource of resources) resource.register(app);
}
