// Every resource folder registers its routes here. Order matters only where paths overlap:
// fixed segments (e.g. /api/groups/join) are registered before parameters.
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../http/env';
import * as auth from './auth';
import * as groups from './groups';
import * as live from './live';
import * as service from './service';

const resources = [service, auth, groups, live];

export function registerRoutes(app: OpenAPIHono<AppEnv>): void {
  for (const resource of resources) resource.register(app);
}
