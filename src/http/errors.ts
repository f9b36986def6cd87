// The one place errors become HTTP: the contract's shape, never a stack or internal text.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { AppError, codeForStatus, ERROR_STATUS, type ErrorCode } from '../domain/errors';
import { NamedStatementRefused } from '../db/named-statements';
import type { AppEnv } from './env';

export function errorBody(requestId: string, code: ErrorCode, message: string, details?: Record<string, unknown>) {
  return { error: { code, message, request_id: requestId, ...(details ? { details } : {}) } };
}

export function sendError(c: Context<AppEnv>, err: AppError): Response {
  // Every 503 says when to come back, whoever raised it.
  const retryAfter = err.retryAfter ?? (err.code === 'UNAVAILABLE' ? UNAVAILABLE_RETRY_AFTER : undefined);
  if (retryAfter !== undefined) c.header('Retry-After', String(retryAfter));
  return c.json(errorBody(c.get('requestId') ?? '', err.code, err.message, err.details), err.status as ContentfulStatusCode);
}

/**
 * The answer to a request that never reaches the app (no URL can be made of it, or the HTTP server
 * could not parse it), in the contract's shape: it gets its request id here.
 */
export function unreadableRequest(status = 400, message = 'The request line or Host header is not valid.'): Response {
  const requestId = crypto.randomUUID();
  return Response.json(errorBody(requestId, codeForStatus(status), message), { status, headers: { 'X-Request-Id': requestId } });
}

/** Seconds a client should wait before retrying while the database is unreachable. */
export const UNAVAILABLE_RETRY_AFTER = 5;

/** Maps anything thrown to the contract's error shape. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof HTTPException) {
    const code = codeForStatus(err.status);
    // Hono's own messages (malformed JSON, unsupported media type) are safe to show; keep them short.
    const message = err.status < 500 && err.message && err.message.length < 200 ? err.message : undefined;
    return new AppError(code, message);
  }
  if (databaseUnavailable(err)) return databaseUnavailableError();
  return new AppError('INTERNAL');
}

export const databaseUnavailableError = () => new AppError('UNAVAILABLE', 'The database is unavailable; retry shortly.', undefined, UNAVAILABLE_RETRY_AFTER);

// SQLSTATEs: 08 connection, 53 insufficient resources, 57P01-03 shutdown / cannot connect now,
// 57P05 and 25P03 a session ended for idling (idle_session_timeout, idle_in_transaction_session_
// timeout), 57014 a statement cancelled (statement_timeout), 55P03 a lock not had in time
// (lock_timeout), 25006 a read-only server (a standby, or the old primary after a failover),
// 3D000 database missing, 28 authentication (a misconfigured or rebuilt server), 40001/40P01
// serialization and deadlock. Node's socket codes: nothing listening, reset, unreachable.
const UNAVAILABLE_SQLSTATE = /^(08|53|28)|^(57P01|57P02|57P03|57P05|25P03|57014|55P03|25006|3D000|40001|40P01)$/;
const UNAVAILABLE_SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

// pg's and the Neon driver's own fixed texts for a connection that failed or dropped (no code),
// among them a query sent on a checked-out connection that Postgres had already ended.
const CONNECTION_LOST =
  /^(Connection terminated unexpectedly|Connection terminated due to connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable|Client was closed and is not queryable)$/;

/** An error and the causes under it, outermost first (at most 8: a cycle must not hang us). */
export function* causes(err: unknown): Generator<unknown> {
  for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) yield e;
}

/** The database is down, missing or refusing us: worth a retry later, never a 500. */
export function databaseUnavailable(err: unknown): boolean {
  for (const e of causes(err)) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_SOCKET.has(code))) return true;
    if (e instanceof Error && CONNECTION_LOST.test(e.message)) return true;
    // Its retry runs unnamed (src/db/named-statements.ts).
    if (e instanceof NamedStatementRefused) return true;
    // 55000 is a broad class: only its "not currently accepting connections" (ALLOW_CONNECTIONS false) is an outage.
    if (code === '55000' && e instanceof Error && /is not currently accepting connections$/.test(e.message)) return true;
    // The Neon driver rejects with the WebSocket's ErrorEvent when it cannot reach its proxy.
    if ((e as { constructor?: { name?: string } }).constructor?.name === 'ErrorEvent') return true;
    // AggregateError from a connect that tried several addresses (IPv4 and IPv6).
    const inner = (e as { errors?: unknown }).errors;
    if (Array.isArray(inner) && inner.some(databaseUnavailable)) return true;
  }
  return false;
}

/**
 * What a log may say about an error: its class, its cause's class and SQLSTATE, and the first
 * frame of our own code. Never the message: drivers put SQL and bound parameters in it.
 */
export function errorFields(err: unknown): Record<string, string | undefined> {
  if (!(err instanceof Error)) return { error: typeof err };
  const cause = (err as { cause?: unknown }).cause;
  const code = [(err as { code?: unknown }).code, (cause as { code?: unknown } | undefined)?.code].find(
    (c): c is string => typeof c === 'string' && /^[0-9A-Z]{5}$|^E[A-Z_]{2,20}$/.test(c),
  );
  return {
    error: err.name,
    ...(cause instanceof Error ? { cause: cause.name } : {}),
    ...(code ? { code } : {}),
    at: ownFrame(err),
  };
}

/** The first stack frame in our own code, as `src/…:line:col`; the message lines are skipped. */
function ownFrame(err: Error): string | undefined {
  const stack = err.stack ?? '';
  // V8 starts the stack with "Name: message", and a message may span lines (drizzle's does).
  const head = String(err);
  const frames = (stack.startsWith(head) ? stack.slice(head.length) : stack).split('\n');
  for (const line of frames) {
    const frame = /^\s+at (?:.*? \()?(.*?):(\d+):(\d+)\)?$/.exec(line);
    // Only our code: not a dependency's, not the runtime's own (node:internal/…).
    if (!frame || /node_modules|^node:|^internal\/|^\[/.test(frame[1]!)) continue;
    const file = frame[1]!.replace(/^file:\/\//, '');
    // From the project's own folder: src/… run from source, dist/… as `npm start` runs it (its .map maps it back).
    const own = Math.max(file.lastIndexOf('/src/'), file.lastIndexOf('/dist/'));
    return `${own >= 0 ? file.slice(own + 1) : file.split('/').pop()}:${frame[2]}:${frame[3]}`;
  }
  return undefined;
}

/**
 * Whether `err` is the request's own stream failing: its connection cut by the client or closed
 * by the server's refusal (a bad chunk, a timeout) before the body arrived whole. On Node that
 * error carries ECONNRESET, which must not read as the database's.
 */
function requestCut(err: unknown, c: Context<AppEnv>): boolean {
  const incoming = (c.env as { incoming?: { errored?: unknown } } | undefined)?.incoming;
  return Boolean(incoming?.errored) && [...causes(err)].includes(incoming!.errored);
}

export function onError(err: unknown, c: Context<AppEnv>): Response {
  // Nobody is left to read the answer; the access log still says what happened.
  if (requestCut(err, c)) return sendError(c, new AppError('VALIDATION_ERROR', 'The request did not arrive whole.'));
  const appError = toAppError(err);
  if (appError.status >= 500) {
    c.get('deps')?.logger.log(appError.code === 'UNAVAILABLE' ? 'warn' : 'error', {
      msg: appError.code === 'UNAVAILABLE' ? 'database unavailable' : 'unhandled error',
      request_id: c.get('requestId'),
      route: c.req.routePath,
      ...errorFields(err),
    });
  }
  return sendError(c, appError);
}

export { ERROR_STATUS };
