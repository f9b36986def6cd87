// The one place errors become HTTP: the contract's shape, never a stack or internal text.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { AppError, codeForStatus, ERROR_STATUS, type ErrorCode } from '../domain/errors';
import type { AppEnv } from './env';

export function errorBody(c: Context<AppEnv>, code: ErrorCode, message: string, details?: Record<string, unknown>) {
  return {
    error: {
      code,
      message,
      request_id: c.get('requestId') ?? '',
      ...(details ? { details } : {}),
    },
  };
}

export function sendError(c: Context<AppEnv>, err: AppError): Response {
  if (err.retryAfter !== undefined) c.header('Retry-After', String(err.retryAfter));
  return c.json(errorBody(c, err.code, err.message, err.details), err.status as ContentfulStatusCode);
}

/** Maps anything thrown to the contract's error shape. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof HTTPException) {
    const code = codeForStatus(err.status);
    // Hono's own messages (malformed JSON, unsupported media type) are safe to show; keep them short.
    const message = err.status < 500 && err.message && err.message.length < 200 ? err.message : undefined;
    return new AppError(code, message);
  }
  if (isTransientDatabaseError(err)) return new AppError('UNAVAILABLE', 'The database is briefly unavailable; retry shortly.');
  return new AppError('INTERNAL');
}

/** Connection loss, server shutdown, too many connections, deadlock or serialization failure: worth a retry. */
function isTransientDatabaseError(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (code.startsWith('08') || ['57P01', '57P02', '57P03', '53300', '40001', '40P01', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT'].includes(code)) return true;
  }
  return false;
}

export function onError(err: unknown, c: Context<AppEnv>): Response {
  const appError = toAppError(err);
  if (appError.status >= 500) {
    const deps = c.get('deps');
    deps?.logger.log('error', {
      msg: 'unhandled error',
      request_id: c.get('requestId'),
      route: c.req.routePath,
      error: err instanceof Error ? err.name : typeof err,
      // Only the first stack frame's location: no messages, which may carry SQL or data.
      at: err instanceof Error ? err.stack?.split('\n')[1]?.trim() : undefined,
    });
  }
  return sendError(c, appError);
}

export { ERROR_STATUS };
