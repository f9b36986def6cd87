// Route definitions: one helper adds the auth requirement, the body cap, and the error responses
// to every route, so the OpenAPI document and the behaviour cannot drift apart.
import { createRoute, type RouteConfig } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../domain/errors';
import { requireAuth } from './auth';
import { writeLimit } from './write-limit';
import { ErrorSchema } from './schemas';

const errorContent = { 'application/json': { schema: ErrorSchema } };

const ERROR_RESPONSES = {
  400: { description: 'VALIDATION_ERROR', content: errorContent },
  401: { description: 'UNAUTHENTICATED, TOKEN_EXPIRED or INVALID_CREDENTIALS', content: errorContent },
  403: { description: 'FORBIDDEN or KEY_PENDING', content: errorContent },
  404: { description: 'NOT_FOUND', content: errorContent },
  409: { description: 'CONFLICT', content: errorContent },
  413: { description: 'PAYLOAD_TOO_LARGE or QUOTA_EXCEEDED', content: errorContent },
  415: { description: 'UNSUPPORTED_MEDIA_TYPE', content: errorContent },
  429: { description: 'RATE_LIMITED (see Retry-After)', content: errorContent },
  500: { description: 'INTERNAL', content: errorContent },
  503: { description: 'UNAVAILABLE: the database is down or missing (see Retry-After)', content: errorContent },
} as const;

/** Refuses a body larger than the route can ever accept, counting the stream (no Content-Length needed). */
export const maxBody = (maxSize: number): MiddlewareHandler =>
  bodyLimit({
    maxSize,
    onError: (c) => {
      // The rest of the body is never read: the connection cannot carry another request.
      c.header('Connection', 'close');
      throw new AppError('PAYLOAD_TOO_LARGE', `The request body is larger than ${maxSize} bytes.`, { limit: maxSize });
    },
  });

/** Default body cap for JSON routes that carry no large ciphertext. */
export const SMALL_BODY = 64 * 1024;

type Options = {
  /** Public routes skip the bearer token (default: authenticated). */
  public?: boolean;
  /** Body cap in bytes; default SMALL_BODY. */
  maxBody?: number;
};

export function defineRoute<R extends RouteConfig>(config: R & Options) {
  const { public: isPublic, maxBody: cap, ...route } = config;
  const extra = Array.isArray(route.middleware) ? route.middleware : route.middleware ? [route.middleware] : [];
  const hasBody = ['post', 'put', 'patch', 'delete'].includes(route.method);
  return createRoute({
    ...route,
    middleware: [
      ...(isPublic ? [] : [requireAuth]),
      ...(hasBody && !isPublic ? [writeLimit(cap ?? SMALL_BODY)] : []),
      ...(hasBody ? [maxBody(cap ?? SMALL_BODY)] : []),
      ...extra,
    ] as MiddlewareHandler[],
    security: isPublic ? [] : [{ bearer: [] }],
    responses: { ...ERROR_RESPONSES, ...route.responses },
  } as unknown as R) as R;
}

/** A required JSON request body. */
export const jsonBody = <T>(schema: T) => ({ content: { 'application/json': { schema } }, required: true as const });

/** A JSON response. */
export const jsonResponse = <T>(description: string, schema: T) => ({ description, content: { 'application/json': { schema } } });
