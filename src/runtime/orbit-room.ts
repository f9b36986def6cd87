// The per-orbit Durable Object: owns the orbit's live sockets through the Hibernation API and
// receives committed events from the Worker (/publish). Everything ordering needs lives in each
// socket's attachment (user, session, token expiry, last seq sent), so the object may be evicted
// between any two calls; pings are answered by the runtime itself without waking it.
import { DurableObject } from 'cloudflare:workers';
import type { DurableObjectState, WebSocket as CfWebSocket } from '@cloudflare/workers-types';
import { parseConfig, type Config } from '../config';
import type { Logger } from '../deps';
import type { StoredEvent } from '../domain/events';
import { BehindCheck } from '../domain/live/backpressure';
import { CLOSE, LIVE, PING, PONG } from '../domain/live/protocol';
import { LiveRoom, type LivePeer } from '../domain/live/room';
import { newSocketState, type LiveIdentity, type LiveSocketState } from '../domain/live/socket-state';
import { openNeon } from '../adapters/db-neon';
import { IDENTITY_HEADER, ORBIT_HEADER } from '../adapters/live-do';
import { jsonLogger } from '../adapters/logger-json';
import { analyticsEngineMetrics, type AnalyticsEngineMetrics } from '../adapters/metrics-analytics-engine';
import type { WorkerEnv } from './worker-deps';

// Workers globals (their type package is not loaded globally: it clashes with Node's and the DOM's).
declare const WebSocketPair: { new (): { 0: CfWebSocket; 1: CfWebSocket } };
declare const WebSocketRequestResponsePair: { new (request: string, response: string): unknown };

const OPEN = 1;

class RoomPeer implements LivePeer {
  private closed = false;
  // Where the runtime reports bufferedAmount, a reader that stays behind is dropped as on Node.
  private readonly behind = new BehindCheck(
    () => (this.ws as { bufferedAmount?: number }).bufferedAmount,
    (code, reason) => this.close(code, reason),
  );
  constructor(
    readonly ws: CfWebSocket,
    readonly state: LiveSocketState,
  ) {}

  get open() {
    return !this.closed && this.ws.readyState === OPEN;
  }

  send(text: string) {
    if (!this.open) return;
    try {
      this.ws.send(text);
    } catch {
      this.closed = true;
      return;
    }
    this.behind.sent();
  }

  close(code: number, reason: string) {
    if (this.closed) return;
    this.closed = true;
    this.behind.stop();
    try {
      this.ws.close(code, reason);
    } catch {
      // already closing
    }
  }

  save() {
    this.ws.serializeAttachment(this.state);
  }
}

export class OrbitRoom extends DurableObject<WorkerEnv> {
  private readonly wrapped = new WeakMap<CfWebSocket, RoomPeer>();
  private room?: LiveRoom;
  private settings?: { config: Config; logger: Logger };

  /** Sockets closed, when the ANALYTICS binding is there (the Worker counts the ones it opened). */
  private get metrics(): AnalyticsEngineMetrics | undefined {
    return analyticsEngineMetrics(this.env);
  }

  constructor(ctx: DurableObjectState, env: WorkerEnv) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG) as never);
  }

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const groupId = request.headers.get(ORBIT_HEADER);
    if (!groupId) return new Response('orbit id missing', { status: 400 });
    if (url.pathname === '/publish' && request.method === 'POST') {
      const events = ((await request.json()) as Array<StoredEvent & { at: string }>).map((e) => ({ ...e, at: new Date(e.at) }));
      await this.liveRoom(groupId).publish(events);
      return new Response(null, { status: 204 });
    }
    if (url.pathname === '/connect' && request.headers.get('upgrade') === 'websocket') {
      return this.connect(groupId, JSON.parse(request.headers.get(IDENTITY_HEADER) ?? 'null') as LiveIdentity);
    }
    return new Response('not found', { status: 404 });
  }

  override async webSocketMessage(ws: CfWebSocket, message: string | ArrayBuffer): Promise<void> {
    const peer = this.peer(ws);
    if (!peer) return ws.close(CLOSE.policy, 'unknown socket');
    await this.liveRoom(peer.state.groupId).message(peer, message);
  }

  override async webSocketClose(ws: CfWebSocket, code: number, reason: string): Promise<void> {
    this.wrapped.delete(ws);
    this.metrics?.socketClosed();
    try {
      // Completes the closing handshake the client started.
      ws.close(code === 1005 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: CfWebSocket): Promise<void> {
    this.wrapped.delete(ws);
    this.metrics?.socketClosed();
  }

  /** Token expiry, session liveness and membership; re-armed while sockets remain. */
  override async alarm(): Promise<void> {
    const peers = this.peers();
    if (!peers.length) return;
    const room = this.liveRoom(peers[0]!.state.groupId);
    room.expireTokens();
    try {
      await room.checkAccess();
    } catch (err) {
      // A database blip must not end the checks: a thrown alarm is retried a few times and then
      // dropped, which would leave a removed member's socket open. The next alarm checks again.
      this.settings?.logger.log('warn', { msg: 'live access check failed', error: err instanceof Error ? err.name : String(err) });
    } finally {
      await this.scheduleAlarm();
    }
  }

  private async connect(groupId: string, who: LiveIdentity | null): Promise<Response> {
    if (!who || who.groupId !== groupId) return new Response('identity missing', { status: 400 });
    // The object is the orbit's single point: counting and accepting with no await in between holds the cap.
    if (this.countOf(who.userId) >= LIVE.socketsPerUser) return new Response(null, { status: 429 });
    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, [who.userId]);
    const peer = new RoomPeer(server, newSocketState(who));
    peer.save();
    this.wrapped.set(server, peer);
    await this.scheduleAlarm();
    // The replay runs inside this request, so the object stays up until `ready` is sent.
    await this.liveRoom(groupId).connect(peer);
    return new Response(null, { status: 101, webSocket: client } as ResponseInit);
  }

  private countOf(userId: string): number {
    return this.ctx.getWebSockets(userId).filter((ws) => ws.readyState === OPEN).length;
  }

  private peer(ws: CfWebSocket): RoomPeer | null {
    let peer = this.wrapped.get(ws);
    if (!peer) {
      const state = ws.deserializeAttachment() as LiveSocketState | null;
      if (!state) return null;
      peer = new RoomPeer(ws, state);
      this.wrapped.set(ws, peer);
    }
    return peer;
  }

  private peers(): RoomPeer[] {
    return this.ctx
      .getWebSockets()
      .map((ws) => this.peer(ws))
      .filter((p): p is RoomPeer => p !== null && p.open);
  }

  /** The next liveness check, or a token expiry if one comes first; never later than one already set. */
  private async scheduleAlarm(): Promise<void> {
    const peers = this.peers();
    if (!peers.length) return;
    let next = Date.now() + LIVE.livenessIntervalMs;
    for (const p of peers) next = Math.min(next, p.state.tokenExpiresAt * 1000);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || next < current) await this.ctx.storage.setAlarm(next);
  }

  private liveRoom(groupId: string): LiveRoom {
    if (this.room) return this.room;
    const { config, logger } = (this.settings ??= this.loadSettings());
    const env = this.env;
    this.room = new LiveRoom({
      groupId,
      jwtSecret: config.jwtSecret,
      peers: () => this.peers(),
      async withDb(work) {
        const database = openNeon(env.DATABASE_URL, { wsProxy: env.DB_WS_PROXY || undefined });
        try {
          return await work(database.db);
        } finally {
          await database.close();
        }
      },
      now: () => Date.now(),
      log: (level, fields) => logger.log(level, fields),
    });
    return this.room;
  }

  private loadSettings() {
    const config = parseConfig(this.env);
    return { config, logger: jsonLogger(config.LOG_LEVEL, (line) => console.log(line)) };
  }
}
