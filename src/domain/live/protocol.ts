// The live socket's wire protocol and limits, shared by the Node hub and the Durable Object.
// Runtime-free: frames in, decisions and frames out.
import { AppError } from '../errors';

export const LIVE = {
  /** Client frames larger than this close the socket 1009. */
  maxFrameBytes: 64 * 1024,
  /** More than `floodFrames` client frames within `floodWindowMs` close the socket 1008. */
  floodFrames: 20,
  floodWindowMs: 10_000,
  /** At most one typing frame per socket in this interval; extra ones are dropped. */
  typingIntervalMs: 2_000,
  /** A replay that would send more than this many events or bytes answers resync_required instead. */
  replayMaxEvents: 1_000,
  replayMaxBytes: 8 * 1024 * 1024,
  /** A reader with more than this many bytes queued is closed 1013. */
  maxBehindBytes: 4 * 1024 * 1024,
  socketsPerUser: 5,
  /** Session liveness is checked against the database at this interval (contract: effect within 30 s). */
  livenessIntervalMs: 20_000,
  /**
   * Node: how often each socket is pinged; one that has not answered by the next ping is dropped,
   * unless the ping waits behind data sent before it that a reader this fast would still be reading.
   */
  heartbeatIntervalMs: 30_000,
  minReaderBytesPerSec: 16 * 1024,
  ticketTtlSec: 30,
} as const;

export const CLOSE = {
  goingAway: 1001,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
  overloaded: 1013,
  unauthorized: 4401,
  removed: 4403,
} as const;

/** The exact ping bytes (answered by the Durable Object runtime without waking the object). */
export const PING = '{"type":"ping"}';
export const PONG = '{"type":"pong"}';

export type ClientFrame =
  | { type: 'ping' }
  | { type: 'auth'; accessToken: string }
  | { type: 'typing'; threadId: string }
  | { type: 'invalid'; message: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Parses one client frame (already known to be within the size limit). */
export function parseClientFrame(data: string | ArrayBuffer | Uint8Array): ClientFrame {
  if (typeof data !== 'string') return { type: 'invalid', message: 'Frames must be JSON text.' };
  if (data === PING) return { type: 'ping' };
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return { type: 'invalid', message: 'Frames must be JSON objects.' };
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) return { type: 'invalid', message: 'Frames must be JSON objects.' };
  const frame = value as Record<string, unknown>;
  switch (frame.type) {
    case 'auth':
      if (typeof frame.access_token !== 'string' || !frame.access_token || frame.access_token.length > 4096) {
        return { type: 'invalid', message: 'auth needs an access_token string.' };
      }
      return { type: 'auth', accessToken: frame.access_token };
    case 'typing':
      if (typeof frame.thread_id !== 'string' || !UUID.test(frame.thread_id)) {
        return { type: 'invalid', message: 'typing needs a thread_id (UUID).' };
      }
      return { type: 'typing', threadId: frame.thread_id.toLowerCase() };
    case 'ping':
      return { type: 'invalid', message: 'A ping is exactly {"type":"ping"}.' };
    default:
      return { type: 'invalid', message: 'Unknown frame type; expected ping, auth or typing.' };
  }
}

export function frameBytes(data: string | ArrayBuffer | Uint8Array): number {
  if (typeof data !== 'string') return data.byteLength;
  // Cheap upper bound first: most frames are far below the limit.
  return data.length * 3 <= LIVE.maxFrameBytes ? data.length : new TextEncoder().encode(data).byteLength;
}

export const serverFrame = {
  ready: (seq: number) => JSON.stringify({ type: 'ready', seq }),
  resync: (seq: number) => JSON.stringify({ type: 'resync_required', seq }),
  typing: (userId: string, threadId: string) => JSON.stringify({ type: 'typing', user_id: userId, thread_id: threadId }),
  authorized: (expiresAt: number) => JSON.stringify({ type: 'authorized', expires_at: new Date(expiresAt * 1000).toISOString() }),
  error: (code: string, message: string) => JSON.stringify({ type: 'error', code, message }),
};

export function tooManySockets(): AppError {
  return new AppError('RATE_LIMITED', `At most ${LIVE.socketsPerUser} live sockets per user per orbit.`, { max_sockets: LIVE.socketsPerUser }, 5);
}
