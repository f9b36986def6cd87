// The Node live hub: one per process, one LiveRoom per orbit with sockets. Events come from the
// in-process fan-out (this process's writes) and from NOTIFY hints of other processes; a poll of
// last_seq catches anything a lost notification would have delayed. Sockets are @hono/node-server's
// built-in upgrade on the `ws` server (@hono/node-ws does not install beside node-server 2).
import { randomUUID } from 'node:crypto';
import { inArray } from 'drizzle-orm';
import type { Context } from 'hono';
import type { WebSocket } from 'ws';
import { groups } from '../db/schema';
import type { Clock, Db, LiveGateway, LiveRequest, Logger } from '../deps';
import type { StoredEvent } from '../domain/events';
import { BehindCheck } from '../domain/live/backpressure';
import { enforceAccess, socketAccess } from '../domain/live/access';
import { LEASE_TTL_MS, releaseLeases, renewLeases, takeLease } from '../domain/live/leases';
import { AppError } from '../domain/errors';
import { CLOSE, LIVE, tooManySockets } from '../domain/live/protocol';
import { LiveRoom, type LivePeer } from '../domain/live/room';
import { newSocketState, type LiveSocketState } from '../domain/live/socket-state';
import type { LocalFanout } from './fanout-local';

/**
 * Set on an upgrade request's env by the route once it accepts: node-server.ts completes the
 * handshake and hands over the socket (or says it was lost). Without it the app's answer is sent.
 */
export const ACCEPT_SOCKET = Symbol.for('orbital.live.accept');

export interface SocketAcceptor {
  open(ws: WebSocket): void;
  /** The client went away before the handshake completed. */
  lost(): void;
}

export interface NodeLiveHubOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  jwtSecret: Uint8Array;
  /** How often sessions and memberships are checked against the database (default 20 s; the contract allows 30). */
  livenessIntervalMs?: number;
  /** How often last_seq is polled for orbits with sockets (default 1 s; 0: never). */
  pollIntervalMs?: number;
  /** Bytes a reader may have queued before it is closed 1013 (default 4 MiB). */
  maxBehindBytes?: number;
  /** How long a socket's lease (its place under the per-user cap) counts without renewal (default 30 s). */
  leaseTtlMs?: number;
  /** A typing frame was relayed here: tell the other processes. */
  onTyping?(groupId: string, userId: string, threadId: string): void;
  /** Events just written to an orbit's sockets on this process (metrics: fan-out lag). */
  onDelivered?(events: StoredEvent[]): void;
}

class NodePeer implements LivePeer {
  private closed = false;
  private readonly behind: BehindCheck;
  expiry: ReturnType<typeof setTimeout> | undefined;
  constructor(
    readonly ws: WebSocket,
    readonly state: LiveSocketState,
    maxBehind: number,
    /** Called once the server has decided to close it (it stops counting toward the cap). */
    private readonly onClosing: () => void,
  ) {
    // ws queues without limit; a reader that stays this far behind is dropped so it cannot hold memory.
    this.behind = new BehindCheck(() => ws.bufferedAmount, (code, reason) => this.close(code, reason), maxBehind);
  }

  get open() {
    return !this.closed && this.ws.readyState === 1;
  }

  send(text: string) {
    if (!this.open) return;
    this.ws.send(text);
    this.behind.sent();
  }

  close(code: number, reason: string) {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.expiry);
    this.behind.stop();
    this.onClosing();
    this.ws.close(code, reason);
  }

  save() {}
}

interface Room {
  room: LiveRoom;
  peers: Set<NodePeer>;
  /** Polls that found the orbit gone in a row (the farewell event normally arrives first). */
  missing: number;
}

export class NodeLiveHub implements LiveGateway {
  private readonly rooms = new Map<string, Room>();
  /** This process's socket leases (accepted upgrades not yet open hold one too). */
  private readonly leases = new Set<string>();
  private readonly holder = randomUUID();
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  private readonly maxBehind: number;
  private readonly leaseTtlMs: number;

  constructor(private readonly options: NodeLiveHubOptions) {
    this.maxBehind = options.maxBehindBytes ?? LIVE.maxBehindBytes;
    this.leaseTtlMs = options.leaseTtlMs ?? LEASE_TTL_MS;
    this.every(options.livenessIntervalMs ?? LIVE.livenessIntervalMs, () => this.checkAccess());
    if (options.pollIntervalMs !== 0) this.every(options.pollIntervalMs ?? 1000, () => this.poll());
    this.every(this.leaseTtlMs / 3, () => renewLeases(options.db, [...this.leases], this.leaseTtlMs));
  }

  /** Takes this process's committed events from the fan-out. */
  listen(fanout: LocalFanout): () => void {
    return fanout.onEvents((groupId, events) => void this.rooms.get(groupId)?.room.publish(events));
  }

  /** Another process committed up to `seq` in this orbit. */
  notified(groupId: string, seq: number): void {
    void this.rooms.get(groupId)?.room.catchUpTo(seq);
  }

  /** Events handed over whole by another process (the never-stored farewell). */
  published(groupId: string, events: StoredEvent[]): void {
    void this.rooms.get(groupId)?.room.publish(events);
  }

  /** A typing frame relayed in another process. */
  typing(groupId: string, userId: string, threadId: string): void {
    this.rooms.get(groupId)?.room.relayTyping(userId, threadId);
  }

  /** Open sockets of this user in this orbit on this process. */
  countSockets(groupId: string, userId: string): number {
    let n = 0;
    for (const p of this.rooms.get(groupId)?.peers ?? []) if (p.open && p.state.userId === userId) n++;
    return n;
  }

  async upgrade(c: Context, request: LiveRequest): Promise<Response> {
    const { groupId, userId } = request;
    const { db, logger } = this.options;
    // Only node-server.ts's upgrade handler can complete a handshake (Upgrade without Connection: upgrade arrives as a plain GET).
    if (!(ACCEPT_SOCKET in (c.env as object))) throw new AppError('VALIDATION_ERROR', 'This endpoint is a WebSocket: send Upgrade: websocket.');
    // The cap counts every process's sockets: one lease row each in Postgres.
    const lease = await takeLease(db, { groupId, userId, holder: this.holder, ttlMs: this.leaseTtlMs });
    if (!lease) throw tooManySockets();
    // The lease is held from now until the socket closes; a handshake that never completes gives it back.
    this.leases.add(lease);
    const release = () => {
      if (!this.leases.delete(lease)) return;
      // Should this fail, the lease lapses by itself: it is no longer renewed.
      releaseLeases(db, [lease]).catch((err) => logger.log('warn', { msg: 'live lease release failed', error: err instanceof Error ? err.name : String(err) }));
    };
    let opened = false;
    setTimeout(() => opened || release(), 10_000).unref();
    // The socket itself, not a helper's wrapper: nothing of this request (its context, headers and
    // URL) stays held for the socket's life. 10,000 idle sockets held 231 MiB through the wrapper.
    const acceptor: SocketAcceptor = {
      open: (ws) => {
        opened = true;
        const peer = this.open(ws, request, release);
        ws.on('message', (data: Buffer, isBinary: boolean) => {
          const frame = isBinary ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data.toString('utf8');
          void this.rooms.get(groupId)?.room.message(peer, frame as string | ArrayBuffer);
        });
        ws.on('error', () => {}); // a protocol error (an oversized frame): 'close' follows
        ws.once('close', () => {
          release();
          this.remove(peer);
        });
      },
      lost: release,
    };
    (c.env as Record<symbol, unknown>)[ACCEPT_SOCKET] = acceptor;
    return c.body(null, 200);
  }

  /** Runs the periodic checks now (sessions and memberships, then the last_seq poll). */
  async runChecks(): Promise<void> {
    await this.checkAccess();
    await this.poll();
  }

  /** Stops the timers and gives back this process's leases (the server closes the sockets themselves with 1001). */
  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const { peers } of this.rooms.values()) for (const p of peers) clearTimeout(p.expiry);
    const held = [...this.leases];
    this.leases.clear();
    await releaseLeases(this.options.db, held).catch(() => undefined);
  }

  private open(ws: WebSocket, request: LiveRequest, release: () => void): NodePeer {
    const peer = new NodePeer(ws, newSocketState(request), this.maxBehind, release);
    const entry = this.room(request.groupId);
    entry.peers.add(peer);
    this.armExpiry(peer);
    void entry.room.connect(peer);
    return peer;
  }

  private remove(peer: NodePeer) {
    clearTimeout(peer.expiry);
    const groupId = peer.state.groupId;
    const entry = this.rooms.get(groupId);
    if (!entry) return;
    entry.peers.delete(peer);
    if (!entry.peers.size) this.rooms.delete(groupId);
  }

  private room(groupId: string): Room {
    let entry = this.rooms.get(groupId);
    if (entry) return entry;
    const { db, clock, logger, jwtSecret, onTyping } = this.options;
    const peers = new Set<NodePeer>();
    const room = new LiveRoom({
      groupId,
      jwtSecret,
      peers: () => peers,
      withDb: (work) => work(db),
      now: () => clock.now().getTime(),
      log: (level, fields) => logger.log(level, fields),
      onTyping: onTyping && ((userId, threadId) => onTyping(groupId, userId, threadId)),
      onRenewed: (p) => this.armExpiry(p as NodePeer),
      onDelivered: this.options.onDelivered,
    });
    entry = { room, peers, missing: 0 };
    this.rooms.set(groupId, entry);
    return entry;
  }

  private armExpiry(peer: NodePeer) {
    clearTimeout(peer.expiry);
    const delay = peer.state.tokenExpiresAt * 1000 - this.options.clock.now().getTime();
    peer.expiry = setTimeout(
      () => {
        if (peer.state.tokenExpiresAt * 1000 <= this.options.clock.now().getTime()) peer.close(CLOSE.unauthorized, 'access token expired');
        else this.armExpiry(peer);
      },
      Math.max(0, Math.min(delay, 2 ** 31 - 1)),
    );
    peer.expiry.unref();
  }

  /** Every socket's session and membership, a few hundred orbits per query: ended sessions close 4401, former members 4403. */
  private async checkAccess() {
    let batch: NodePeer[] = [];
    let orbits = new Set<string>();
    const flush = async () => {
      const access = await socketAccess(this.options.db, [...new Set(batch.map((p) => p.state.sessionId))], [...orbits]);
      for (const p of batch) enforceAccess(p, access);
      batch = [];
      orbits = new Set();
    };
    for (const [groupId, { peers }] of [...this.rooms]) {
      for (const p of peers) if (p.open) batch.push(p);
      orbits.add(groupId);
      if (batch.length >= 500 || orbits.size >= 500) await flush();
    }
    if (batch.length) await flush();
  }

  /** Backstop for lost notifications: any orbit whose last_seq is ahead of its sockets catches up. */
  private async poll() {
    const ids = [...this.rooms.keys()];
    for (let i = 0; i < ids.length; i += 1000) {
      const chunk = ids.slice(i, i + 1000);
      const rows = await this.options.db.select({ id: groups.id, last: groups.lastSeq }).from(groups).where(inArray(groups.id, chunk));
      const found = new Map(rows.map((r) => [r.id, r.last]));
      for (const id of chunk) {
        const entry = this.rooms.get(id);
        if (!entry) continue;
        const last = found.get(id);
        if (last === undefined) {
          if (++entry.missing >= 2) entry.room.closeAll(CLOSE.removed, 'orbit deleted');
        } else {
          entry.missing = 0;
          void entry.room.catchUpTo(last);
        }
      }
    }
  }

  private every(ms: number, task: () => Promise<void>) {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      task()
        .catch((err) => this.options.logger.log('error', { msg: 'live hub task failed', error: err instanceof Error ? err.name : String(err) }))
        .finally(() => (running = false));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }
}
