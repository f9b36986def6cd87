// Route definitions: one helper adds the auth requirement, the body cap, the error responses and
// the response headers to every route, so the OpenAPI document and the behaviour cannot drift apart.
import { createRoute, type OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import type { Context, MiddlewareHandler } from 'hono';
import { AppError, type ErrorCode } from '../domain/errors';
import { requireAuth } from './auth';
import type { AppEnv } from './env';
import { writeLimit } from './write-limit';
import { codesOfStatus, errorResponses, idempotencyKeyParam, parserRefusalRefs, withHeaders, type HeaderName } from './openapi';

/** Refuses a body larger than the route can ever accept, counting the stream (no Content-Length needed). */
export const maxBody = (maxSize: number): MiddlewareHandler => {
  const tooLarge = (c: Context) => {
    // The rest of the body is never read: the connection cannot carry another request.
    c.header('Connection', 'close');
    throw new AppError('PAYLOAD_TOO_LARGE', `The request body is larger than ${maxSize} bytes.`, { limit: maxSize });
  };
  const counted = bodyLimit({ maxSize, onError: tooLarge });
  return (c, next) => {
    // Both runtimes read no more than a declared length, so checking it is enough, and the body is
    // left untouched: on Node, wrapping it in a stream (as counting does) builds a full web Request.
    const declared = c.req.header('content-length');
    if (declared === undefined || c.req.header('transfer-encoding') !== undefined) return counted(c, next);
    return Number(declared) > maxSize ? tooLarge(c) : next();
  };
};

/** Default body cap for JSON routes that carry no large ciphertext. */
export const SMALL_BODY = 64 * 1024;

type Options = {
  /** Stable name for client generators: `<resource>.<action>`, e.g. `threads.list`. */
  operationId: string;
  /** Public routes skip the bearer token (default: authenticated). */
  public?: boolean;
  /** Body cap in bytes; default SMALL_BODY. */
  maxBody?: number;
  /** Error codes this route answers beyond those every route of its kind does (see commonCodes). */
  errors?: ErrorCode[];
  /** The handler honours Idempotency-Key (http/idempotency.ts). */
  idempotent?: boolean;
};

type Request = { params?: unknown; query?: unknown; headers?: unknown; body?: unknown };

/** The codes a route answers by what it is: any input can be invalid, any write can be too large, … */
function commonCodes(request: Request, isPublic: boolean, hasBody: boolean, idempotent: boolean): ErrorCode[] {
  const codes: ErrorCode[] = ['METHOD_NOT_ALLOWED', 'INTERNAL', 'UNAVAILABLE'];
  if (request.params || request.query || request.headers || request.body || idempotent) codes.push('VALIDATION_ERROR');
  if (!isPublic) codes.push('UNAUTHENTICATED', 'TOKEN_EXPIRED');
  if (request.params && !isPublic) codes.push('NOT_FOUND');
  if (hasBody) codes.push('PAYLOAD_TOO_LARGE');
  if (request.body) codes.push('UNSUPPORTED_MEDIA_TYPE');
  if (hasBody && !isPublic) codes.push('RATE_LIMITED');
  // A retry whose resource was deleted since answers 404, as reading it would.
  if (idempotent) codes.push('CONFLICT', 'NOT_FOUND');
  return codes;
}

type Responses = RouteConfig['responses'];

/** The route's own responses with their headers, then one error response per status of its codes. */
function responsesOf(route: RouteConfig, codes: ErrorCode[], isPublic: boolean, idempotent: boolean): Responses {
  const out: Responses = {};
  const declared = route.responses as Record<string, { description?: string; headers?: unknown }>;
  for (const [status, response] of Object.entries(declared)) {
    const code = Number(status);
    if (code >= 400) {
      if (!codes.some((c) => codesOfStatus(code).includes(c))) codes.push(...codesOfStatus(code));
      continue;
    }
    const names: HeaderName[] = code === 101 ? [] : ['X-Request-Id'];
    if (!isPublic && code !== 101) names.push('Cache-Control');
    if (idempotent && code < 300) names.push('Idempotent-Replayed');
    out[status] = withHeaders(response, names) as Responses[string];
  }
  return { ...out, ...(errorResponses(codes, declared) as Responses), ...(parserRefusalRefs as Responses) };
}

export function defineRoute<R extends RouteConfig>(config: R & Options) {
  const { public: isPublic = false, maxBody: cap, errors = [], idempotent = false, ...route } = config;
  const extra = Array.isArray(route.middleware) ? route.middleware : route.middleware ? [route.middleware] : [];
  const hasBody = ['post', 'put', 'patch', 'delete'].includes(route.method);
  const codes = [...commonCodes(route.request ?? {}, isPublic, hasBody, idempotent), ...errors];
  return createRoute({
    ...route,
    ...(idempotent ? { parameters: [...(route.parameters ?? []), idempotencyKeyParam] } : {}),
    middleware: [
      ...(isPublic ? [] : [requireAuth]),
      ...(hasBody && !isPublic ? [writeLimit(cap ?? SMALL_BODY)] : []),
      ...(hasBody ? [maxBody(cap ?? SMALL_BODY)] : []),
      ...extra,
    ] as MiddlewareHandler[],
    security: isPublic ? [] : [{ bearer: [] }],
    responses: responsesOf(route, codes, isPublic, idempotent),
  } as unknown as R) as R;
}

/** Declares a route in the document whose handler is not an app.openapi() one (the document itself, the docs page). */
export function declareRoute(app: OpenAPIHono<AppEnv>, config: RouteConfig & Options): void {
  const { middleware: _middleware, ...declaration } = defineRoute(config);
  app.openAPIRegistry.registerPath(declaration);
}

/** A required JSON request body. */
export const jsonBody = <T>(schema: T) => ({ content: { 'application/json': { schema } }, required: true as const });

/** A JSON response. */
export const jsonResponse = <T>(description: string, schema: T) => ({ description, content: { 'application/json': { schema } } });
