// A live subscription to one orbit: a ticket-authorized WebSocket that reconnects with back-off
// and resumes with after_seq, so the caller sees every event once, in seq order. When the server
// says too much was missed (resync_required), the caller is told to reload through the lists.
import WebSocket from 'ws';
import type { OrbitalClient } from './api';
import { ApiError } from './errors';
import { tokenExpiry } from './http';
import type { OrbitEvent } from './types';

export type LiveStatus = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface LiveOptions {
  /** Resume after this seq (events with a greater seq are sent first); omitted: only new events. */
  afterSeq?: number;
  onEvent(event: OrbitEvent): void | Promise<void>;
  /** More was missed than the server replays: reload through the list endpoints; events continue after `seq`. */
  onResync?(seq: number): void | Promise<void>;
  /** Caught up to `seq`; what follows is live. */
  onReady?(seq: number): void;
  onTyping?(typing: { user_id: string; thread_id: string }): void;
  onStatus?(status: LiveStatus, detail?: { code?: number; reason?: string; error?: unknown; retryInMs?: number }): void;
  /** Back-off between reconnects: doubles from `initialMs` up to `maxMs` (defaults 500 ms, 30 s), with jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Ping period; a socket that answers nothing for 10 s after a ping is replaced (default 25 s). */
  pingMs?: number;
}

export interface LiveSubscription {
  /** The highest seq handed to onEvent (or reported by ready/resync). */
  readonly lastSeq: number;
  /** Resolves when the subscription ends for good: close(), removal (4403), or a session that ended (4401). */
  readonly closed: Promise<{ code: number; reason: string }>;
  sendTyping(threadId: string): void;
  /** Drops the current socket and reconnects (e.g. after the device changed networks); no event is lost. */
  reconnect(): void;
  close(): void;
}

/** Close codes after which reconnecting cannot help (a revoked session shows when the next ticket is refused). */
const FINAL = new Map([[4403, 'removed from the orbit']]);
const TYPING_EVERY_MS = 2000;
/**
 * After the server's close frame (answered at once), how long to wait for the server to end the
 * connection before dropping it. Nothing can follow a close frame, so its code is final: on
 * Workers the runtime keeps the TCP connection of a socket its Durable Object closed until the
 * idle object is evicted, about 10 s later (README, "Live sockets on Workers").
 */
const CLOSE_GRACE_MS = 500;

export function subscribe(client: OrbitalClient, groupId: string, options: LiveOptions): LiveSubscription {
  const initialMs = options.backoff?.initialMs ?? 500;
  const maxMs = options.backoff?.maxMs ?? 30_000;
  const pingMs = options.pingMs ?? 25_000;
  let lastSeq = options.afterSeq ?? -1;
  let ws: WebSocket | undefined;
  let stopped = false;
  let failures = 0;
  let lastTyping = 0;
  let timers: ReturnType<typeof setTimeout>[] = [];
  let queue = Promise.resolve();
  let finish!: (v: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (finish = r));

  const clearTimers = () => {
    timers.forEach(clearTimeout);
    timers = [];
  };
  const stop = (code: number, reason: string) => {
    if (stopped) return;
    stopped = true;
    clearTimers();
    ws?.close(1000);
    options.onStatus?.('closed', { code, reason });
    void queue.then(() => finish({ code, reason }));
  };

  const retry = (detail: { code?: number; reason?: string; error?: unknown }) => {
    if (stopped) return;
    clearTimers();
    const delay = Math.min(maxMs, initialMs * 2 ** failures++) * (0.5 + Math.random() / 2);
    options.onStatus?.('reconnecting', { ...detail, retryInMs: Math.round(delay) });
    timers.push(setTimeout(() => void connect(), delay));
  };

  /** Renews the socket's authorization before the access token runs out (else the server closes 4401). */
  const scheduleAuth = (socket: WebSocket) => {
    const exp = tokenExpiry(client.tokens?.access_token ?? '');
    if (exp === undefined) return;
    const at = Math.max(1000, exp - Date.now() - 60_000);
    timers.push(
      setTimeout(async () => {
        try {
          await client.http.refresh(client.tokens?.access_token);
          if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: 'auth', access_token: client.tokens?.access_token }));
          scheduleAuth(socket);
        } catch {
          socket.close(4000, 'token renewal failed');
        }
      }, at),
    );
  };

  /** Everything reaches the caller in the order the server sent it, one callback at a time. */
  const deliver = (work: () => void | Promise<void>) => {
    queue = queue.then(work).catch(() => undefined);
  };

  const handle = (frame: Record<string, any>) => {
    switch (frame.type) {
      case 'ready':
        failures = 0;
        lastSeq = Math.max(lastSeq, frame.seq);
        deliver(() => options.onReady?.(frame.seq));
        return;
      case 'resync_required':
        lastSeq = Math.max(lastSeq, frame.seq);
        deliver(() => options.onResync?.(frame.seq));
        return;
      case 'pong':
      case 'error':
        return;
      case 'typing':
        deliver(() => options.onTyping?.({ user_id: frame.user_id, thread_id: frame.thread_id }));
        return;
      default:
        if (typeof frame.seq !== 'number' || frame.seq <= lastSeq) return; // a replay we already have
        lastSeq = frame.seq;
        deliver(() => options.onEvent(frame as OrbitEvent));
    }
  };

  const connect = async () => {
    if (stopped) return;
    options.onStatus?.('connecting');
    let ticket: string;
    try {
      ticket = (await client.liveTicket(groupId)).ticket;
    } catch (error) {
      // Not a member any more, or logged out: no reconnect will fix it.
      if (error instanceof ApiError && (error.status === 401 || error.status === 403 || error.status === 404)) return stop(4000 + error.status, error.code);
      return retry({ error });
    }
    if (stopped) return;
    // `closeTimeout` (ws 8.23; not in @types/ws) bounds the wait after a close frame.
    const socket = new WebSocket(client.liveUrl(groupId, ticket, lastSeq >= 0 ? lastSeq : undefined), { closeTimeout: CLOSE_GRACE_MS } as WebSocket.ClientOptions);
    ws = socket;
    let alive = true;
    socket.on('open', () => {
      options.onStatus?.('open');
      scheduleAuth(socket);
      const ping = setInterval(() => {
        if (!alive) return socket.terminate();
        alive = false;
        socket.send('{"type":"ping"}');
      }, pingMs);
      socket.once('close', () => clearInterval(ping));
    });
    socket.on('message', (data) => {
      alive = true;
      try {
        handle(JSON.parse(data.toString()) as Record<string, any>);
      } catch {
        // not JSON: ignore
      }
    });
    socket.on('unexpected-response', (_req, res) => {
      res.resume();
      ws = undefined; // the 'close' that follows is this handler's to judge
      const status = res.statusCode ?? 0;
      if (status === 401 || status === 403 || status === 404) stop(4000 + status, `refused with ${status}`);
      else retry({ code: status, reason: 'upgrade refused' });
      socket.terminate();
    });
    socket.on('error', () => undefined); // 'close' follows and decides
    socket.on('close', (code, reason) => {
      if (ws !== socket || stopped) return;
      const text = reason.toString();
      if (FINAL.has(code)) return stop(code, FINAL.get(code)!);
      retry({ code, reason: text });
    });
  };

  void connect();
  return {
    get lastSeq() {
      return lastSeq;
    },
    closed,
    sendTyping(threadId) {
      if (Date.now() - lastTyping < TYPING_EVERY_MS || ws?.readyState !== WebSocket.OPEN) return;
      lastTyping = Date.now();
      ws.send(JSON.stringify({ type: 'typing', thread_id: threadId }));
    },
    reconnect() {
      if (!stopped) ws?.terminate();
    },
    close: () => stop(1000, 'closed by client'),
  };
}
