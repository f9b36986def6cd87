// Media: chunked encrypted uploads and the files they become. Upload routes (fixed segments such
// as /api/media/uploads) are registered before the /api/media/{mediaId} ones.
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../../http/env';
import * as files from './files';
import * as uploads from './uploads';

export function register(app: OpenAPIHono<AppEnv>) {
  uploads.register(app);
  files.register(app);
}
