// A live subscription to one orbit: a ticket-authorized WebSocket that reconnects with back-off
// and resumes with after_seq, so the caller sees every event once, in seq order. When the server
// says too much was missed (resync_required), the caller is told to reload through the lists.
// Written against the standard WebSocket (browsers, Electron, Node 22+); on older Node pass the
// `ws` package's class as `WebSocket` (the Node entry, index.ts, does).
import type { OrbitalClient } from './api';
import { ApiError } from './errors';
import { tokenExpiry } from './http';
import type { OrbitEvent } from './types';

export type LiveStatus = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What the subscription needs of a WebSocket: the standard API (the `ws` package offers it too). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void;
}
export type WebSocketClass = new (url: string) => WebSocketLike;
const OPEN = 1;

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
  /** The WebSocket class; default the global one. */
  WebSocket?: WebSocketClass;
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

export function subscribe(client: OrbitalClient, groupId: string, options: LiveOptions): LiveSubscription {
  const initialMs = options.backoff?.initialMs ?? 500;
  const maxMs = options.backoff?.maxMs ?? 30_000;
  const pingMs = options.pingMs ?? 25_000;
  const Socket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
  if (!Socket) throw new TypeError('no WebSocket here: pass options.WebSocket (e.g. the ws package)');
  let lastSeq = options.afterSeq ?? -1;
  let ws: WebSocketLike | undefined;
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
  const scheduleAuth = (socket: WebSocketLike) => {
    const exp = tokenExpiry(client.tokens?.access_token ?? '');
    if (exp === undefined) return;
    const at = Math.max(1000, exp - Date.now() - 60_000);
    timers.push(
      setTimeout(async () => {
        try {
          await client.http.refresh(client.tokens?.access_token);
          if (socket.readyState === OPEN) socket.send(JSON.stringify({ type: 'auth', access_token: client.tokens?.access_token }));
          scheduleAuth(socket);
        } catch {
          socket.close(4000, 'token renewal failed');
        }
      }, at),
    );
  };

  /** Gives up on a socket now (no closing handshake to wait for) and reconnects. */
  const abandon = (socket: WebSocketLike, detail: { code?: number; reason?: string }) => {
    if (ws !== socket) return;
    ws = undefined;
    socket.close();
    retry(detail);
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
    const socket = new Socket(client.liveUrl(groupId, ticket, lastSeq >= 0 ? lastSeq : undefined));
    ws = socket;
    let alive = true;
    let ping: ReturnType<typeof setInterval> | undefined;
    socket.addEventListener('open', () => {
      options.onStatus?.('open');
      scheduleAuth(socket);
      ping = setInterval(() => {
        if (ws !== socket) return clearInterval(ping);
        if (!alive) return abandon(socket, { reason: 'no answer to ping' });
        alive = false;
        socket.send('{"type":"ping"}');
      }, pingMs);
    });
    socket.addEventListener('message', (event: { data: unknown }) => {
      alive = true;
      try {
        handle(JSON.parse(String(event.data)) as Record<string, any>);
      } catch {
        // not JSON: ignore
      }
    });
    // A refused upgrade shows as an error, then a close (1006): the next ticket request tells why.
    socket.addEventListener('error', () => undefined);
    socket.addEventListener('close', (event: { code: number; reason: string }) => {
      clearInterval(ping);
      if (ws !== socket || stopped) return;
      if (FINAL.has(event.code)) return stop(event.code, FINAL.get(event.code)!);
      retry({ code: event.code, reason: event.reason });
    });
  };

  void connect();
  return {
    get lastSeq() {
      return lastSeq;
    },
    closed,
    sendTyping(threadId) {
      if (Date.now() - lastTyping < TYPING_EVERY_MS || !ws || ws.readyState !== OPEN) return;
      lastTyping = Date.now();
      ws.send(JSON.stringify({ type: 'typing', thread_id: threadId }));
    },
    reconnect() {
      if (!stopped && ws) abandon(ws, { reason: 'reconnect requested' });
    },
    close: () => stop(1000, 'closed by client'),
  };
}
