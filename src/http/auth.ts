import type { MiddlewareHandler } from 'hono';
import { AppError } from '../domain/errors';
import { authenticate } from '../domain/sessions';
import type { AppEnv } from './env';

export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(header);
  return match ? match[1]! : null;
}

/** Requires `Authorization: Bearer <access token>` of a live session; never a query-string token. */
export const requireAuth: MiddlewareHandler<AppEnv> = async (c, next) => {
  const token = bearerToken(c.req.header('authorization'));
  if (!token) throw new AppError('UNAUTHENTICATED', 'An access token is required.');
  const claims = await authenticate(c.get('deps'), token);
  c.set('auth', claims);
  c.header('Cache-Control', 'no-store');
  await next();
};
