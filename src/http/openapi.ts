// The OpenAPI side of every route: one error-code enum, the error responses each route spreads in
// (by the codes it can answer), the response headers the server sends, and the document's header.
// defineRoute (route.ts) applies them, so no route declares an error or a header by hand.
import { z, type OpenAPIHono } from '@hono/zod-openapi';
import { ERROR_STATUS, type ErrorCode } from '../domain/errors';
import type { AppEnv } from './env';

export const ERROR_CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

export const ErrorCodeSchema = z.enum(ERROR_CODES).openapi('ErrorCode', {
  description:
    'Each code has one status: ' + ERROR_CODES.map((code) => `${code} ${ERROR_STATUS[code]}`).join(', ') + '. Each operation lists the codes it can answer.',
});

const ErrorBody = z.object({
  code: ErrorCodeSchema,
  message: z.string().openapi({ description: 'A sentence for people; never parse it.' }),
  request_id: z.string().openapi({ description: 'Also sent as X-Request-Id.' }),
  details: z.record(z.string(), z.unknown()).optional(),
});

export const ErrorSchema = z.object({ error: ErrorBody }).openapi('Error');

/** Response headers, declared once under components/headers. */
const HEADERS = {
  'X-Request-Id': { description: "The request's id (the client's X-Request-Id when given): quote it when reporting a problem.", required: true, schema: { type: 'string' } },
  'Retry-After': { description: 'Seconds to wait before retrying.', required: true, schema: { type: 'integer', minimum: 0 } },
  'Cache-Control': { description: 'no-store on every authenticated answer.', required: true, schema: { type: 'string' } },
  Allow: { description: 'The methods this path has.', required: true, schema: { type: 'string' } },
  'Idempotent-Replayed': {
    description: '`true` when this is the stored outcome of an earlier request with the same Idempotency-Key.',
    required: false,
    schema: { type: 'string', enum: ['true'] },
  },
  ETag: { description: "The file's validator, for If-None-Match and If-Range.", required: true, schema: { type: 'string' } },
  'Last-Modified': { description: 'When the upload completed.', required: true, schema: { type: 'string' } },
  'Accept-Ranges': { description: '`bytes`: one Range is served as 206.', required: true, schema: { type: 'string', enum: ['bytes'] } },
  'Content-Disposition': { description: '`attachment`: never rendered by a browser.', required: true, schema: { type: 'string' } },
  'Content-Range': { description: '`bytes a-b/size` on 206, `bytes */size` on 416.', required: true, schema: { type: 'string' } },
} as const;

export type HeaderName = keyof typeof HEADERS;
type HeaderRefs = Record<string, { $ref: string }>;
export const headerRefs = (...names: HeaderName[]): HeaderRefs =>
  Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${name}` }]));

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    '1–64 visible ASCII characters. A retry with the same key and body (for 48 h) gets the first outcome, marked Idempotent-Replayed: true; the same key with another body, or while the first still runs, is 409 CONFLICT.',
  schema: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7e]+$' },
} as const;
export const idempotencyKeyParam = { $ref: '#/components/parameters/IdempotencyKey' };

/** The Error shape with `error.code` narrowed to `codes`: generators and the response check then know which codes a status carries. */
const errorSchemaFor = (codes: ErrorCode[]) => ({
  allOf: [{ $ref: '#/components/schemas/Error' }, { type: 'object', properties: { error: { type: 'object', properties: { code: { enum: codes } } } } }],
});

/** Headers an error status always carries besides X-Request-Id. */
const ERROR_HEADERS: Partial<Record<number, HeaderName[]>> = { 405: ['Allow'], 416: ['Content-Range'], 429: ['Retry-After'] };

type Described = { description?: string; content?: unknown; headers?: unknown };

/**
 * One response per status of `codes`: the narrowed error body and its headers. A description the
 * route gave for that status (say, what a 410 means there) is kept in front of the codes.
 */
export function errorResponses(codes: Iterable<ErrorCode>, described: Record<string, Described> = {}) {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, unknown> = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    const sorted = ERROR_CODES.filter((c) => list.includes(c));
    const own = described[status]?.description;
    out[status] = {
      description: own ? `${sorted.join(' or ')}: ${own}` : sorted.join(' or '),
      headers: headerRefs('X-Request-Id', ...(ERROR_HEADERS[status] ?? [])),
      content: { 'application/json': { schema: errorSchemaFor(sorted) } },
    };
  }
  return out;
}

/** The codes every status ≥ 400 a route declares by hand stands for (a bare 410 means GONE). */
export const codesOfStatus = (status: number): ErrorCode[] => ERROR_CODES.filter((c) => ERROR_STATUS[c] === status);

/**
 * What the Node server's HTTP parser answers any operation before a route sees the request:
 * shared responses, each operation points at them (`$ref`), so the document says where they can
 * come from without repeating them 60 times.
 */
export const PARSER_REFUSALS = {
  RequestTimeout: {
    nodeCode: 'ERR_HTTP_REQUEST_TIMEOUT',
    status: 408,
    message: 'The request took too long to arrive.',
    description: 'VALIDATION_ERROR: on the Node server, the request stopped arriving before it was whole; the connection closes.',
  },
  HeadersTooLarge: {
    nodeCode: 'HPE_HEADER_OVERFLOW',
    status: 431,
    message: 'The request headers are too large.',
    description: 'VALIDATION_ERROR: on the Node server, the request line and headers are over 16 KiB; the connection closes.',
  },
} as const;

export const parserRefusalRefs = Object.fromEntries(
  Object.entries(PARSER_REFUSALS).map(([name, { status }]) => [String(status), { $ref: `#/components/responses/${name}` }]),
);

/** Adds headers to a response entry, keeping any it declared. */
export function withHeaders<T extends Described>(response: T, names: HeaderName[]): T {
  if (!names.length) return response;
  return { ...response, headers: { ...headerRefs(...names), ...((response.headers as HeaderRefs | undefined) ?? {}) } };
}

export const OPENAPI_DOCUMENT = {
  openapi: '3.1.0',
  info: {
    title: 'Orbital relay API',
    version: '1',
    description:
      'Zero-knowledge relay for end-to-end encrypted orbits. Every ciphertext field is standard base64.\n\n' +
      'Errors always have the `Error` shape; each operation lists the codes it can answer. A path answers 405 METHOD_NOT_ALLOWED (with `Allow`) to a method it does not have. ' +
      '`{mediaId}` and every other id in a path is a UUID, so the literal segment `upload` in `/api/media/upload/…` never matches `/api/media/{mediaId}/…`.',
    // No license has been chosen for the project yet: say so rather than guess one.
    license: { name: 'UNLICENSED: all rights reserved until the owner chooses a license' },
  },
  servers: [{ url: '/', description: 'The server that serves this document' }],
};

/** The shared components (headers, the Idempotency-Key parameter, bearer auth); call once per app. */
export function registerOpenApiComponents(app: OpenAPIHono<AppEnv>) {
  const registry = app.openAPIRegistry;
  registry.register('Error', ErrorSchema);
  registry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  for (const [name, header] of Object.entries(HEADERS)) registry.registerComponent('headers', name, header as never);
  registry.registerComponent('parameters', 'IdempotencyKey', IDEMPOTENCY_KEY as never);
  for (const [name, { description }] of Object.entries(PARSER_REFUSALS)) {
    registry.registerComponent('responses', name, {
      description,
      headers: headerRefs('X-Request-Id'),
      content: { 'application/json': { schema: errorSchemaFor(['VALIDATION_ERROR']) } },
    } as never);
  }
}
