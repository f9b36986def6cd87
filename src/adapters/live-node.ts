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
import { admitSocket, LEASE_TTL_MS, releaseLeases, renewLeases, type Admission } from '../domain/live/leases';
import { AppError, noSuchOrbit } from '../domain/errors';
import { atMost } from '../domain/deadline';
import { CLOSE, LIVE } from '../domain/live/protocol';
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
  /**
   * How often each socket is pinged (a WebSocket ping; default 30 s; 0: never). A socket that has
   * not answered the previous ping by then is dropped: a client gone without closing (a laptop
   * asleep, a network lost) gives back its place under the cap within two intervals.
   */
  heartbeatIntervalMs?: number;
  /** How often last_seq is polled for orbits with sockets (default 1 s; 0: never). */
  pollIntervalMs?: number;
  /** Bytes a reader may have queued before it is closed 1013 (default 4 MiB). */
  maxBehindBytes?: number;
  /** How long a socket's lease (its place under the per-user cap) counts without renewal (default 30 s). */
  leaseTtlMs?: number;
  /** While true the periodic tasks wait: the database has no schema yet (its migrations are running). */
  databasePending?(): boolean;
  /** A typing frame was relayed here: tell the other processes. */
  onTyping?(groupId: string, userId: string, threadId: string): void;
  /** Events just written to an orbit's sockets on this process (metrics: fan-out lag). */
  onDelivered?(events: StoredEvent[]): void;
}

class NodePeer implements LivePeer {
  private closed = false;
  /** Heard from since the last ping (a pong or any frame). */
  private alive = true;
  /** Bytes handed to the socket so far; where the stream was at the last ping; read through (answered pings). */
  private sentBytes = 0;
  private pingedAt = 0;
  private sentAtPing = 0;
  private readThrough = 0;
  private readonly behind: BehindCheck;
  expiry: ReturnType<typeof setTimeout> | undefined;
  constructor(
    readonly ws: WebSocket,
    readonly state: LiveSocketState,
    private readonly maxBehind: number,
    /** Gives back its place under the cap, once the server has decided to close it. */
    private readonly release: () => Promise<void>,
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
    // Its length, not a UTF-8 count: frames are JSON of base64 text (ASCII), and one event goes to every socket.
    this.sentBytes += text.length;
    this.behind.sent();
  }

  /** A frame came in: the client is there. */
  heard() {
    this.alive = true;
  }

  /** A pong: the client read everything sent before its ping. */
  ponged() {
    this.alive = true;
    this.readThrough = this.sentAtPing;
  }

  /**
   * The heartbeat's turn: pings a socket heard from since the last one, and drops one that was not.
   * The ping waits behind what was sent before it, so a client on a slow link still reading that (at
   * LIVE.minReaderBytesPerSec or more, and at most as far behind as the 1013 rule allows) is not dead.
   */
  beat(now: number, interval: number) {
    if (!this.open) return;
    if (this.alive) {
      this.alive = false;
      this.pingedAt = now;
      this.sentAtPing = this.sentBytes;
      this.ws.ping();
      return;
    }
    const unread = Math.min(this.sentBytes - this.readThrough, this.maxBehind);
    if (now - this.pingedAt >= interval + (unread * 1000) / LIVE.minReaderBytesPerSec) this.drop();
  }

  close(code: number, reason: string) {
    if (!this.stop()) return;
    void this.release();
    this.ws.close(code, reason);
  }

  /**
   * Cut without a close frame, as a dead peer is, once its place under the cap is given back (2 s
   * at most): a client that sees the drop and reconnects at once finds its place free.
   */
  private drop() {
    if (!this.stop()) return;
    void atMost(this.release(), 2000).then(() => this.ws.terminate());
  }

  private stop(): boolean {
    if (this.closed) return false;
    this.closed = true;
    clearTimeout(this.expiry);
    this.behind.stop();
    return true;
  }

  save() {}
}

interface Room {
  room: LiveRoom;
  peers: Set<NodePeer>;
  /** Polls that found the orbit gone in a row (the farewell event normally arrives first). */
  missing: number;
  /** Upgrades let in (or being let in) whose sockets have not joined yet. */
  pending: number;
}

/** A lease this process holds (its current id: a lapsed one is replaced), its socket once open, whether it lapsed, whether it was given back. */
interface HeldLease {
  id: string;
  peer?: NodePeer;
  lapsed?: boolean;
  /** Its giving back, once the socket closed (or its handshake never completed). */
  released?: Promise<void>;
  /** A new lease being taken for it after a lapse: giving it back waits for that one. */
  asking?: Promise<unknown>;
}

/** Lapsed sockets asked back under the cap at once (the pool has 10 connections; the rest serve requests). */
const READMIT_PARALLEL = 4;
/** How a lapsed socket whose re-admission was refused closes, by the refusal's code (as enforceAccess closes); else 1013. */
const REFUSAL_CLOSE: Partial<Record<string, [number, string]>> = {
  NOT_FOUND: [CLOSE.removed, 'no longer a member'],
  UNAUTHENTICATED: [CLOSE.unauthorized, 'session ended'],
};

export class NodeLiveHub implements LiveGateway {
  private readonly rooms = new Map<string, Room>();
  /** This process's socket leases (accepted upgrades not yet open hold one too), with their sockets once open. */
  private readonly leases = new Map<string, HeldLease>();
  /** Re-admissions in flight (shutdown waits for them, so their new leases are given back too). */
  private readonly asking = new Set<Promise<unknown>>();
  private renewNow?: () => void;
  /** Leases to delete in the next batch, and that batch. */
  private toRelease: string[] = [];
  private releaseRun: Promise<void> | undefined;
  private readonly holder = randomUUID();
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  private readonly maxBehind: number;
  private readonly leaseTtlMs: number;

  constructor(private readonly options: NodeLiveHubOptions) {
    this.maxBehind = options.maxBehindBytes ?? LIVE.maxBehindBytes;
    this.leaseTtlMs = options.leaseTtlMs ?? LEASE_TTL_MS;
    this.every('access check', options.livenessIntervalMs ?? LIVE.livenessIntervalMs, () => this.checkAccess());
    if (options.pollIntervalMs !== 0) this.every('poll', options.pollIntervalMs ?? 1000, () => this.poll());
    const heartbeat = options.heartbeatIntervalMs ?? LIVE.heartbeatIntervalMs;
    if (heartbeat !== 0) this.every('heartbeat', heartbeat, async () => this.heartbeat(heartbeat));
    this.renewNow = this.every('lease renewal', this.leaseTtlMs / 3, () => this.renewLeases());
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

  /** Only node-server.ts's upgrade handler can complete a handshake: an Upgrade header without Connection: upgrade arrives as a plain GET. */
  canUpgrade(c: Context): boolean {
    return ACCEPT_SOCKET in (c.env as object);
  }

  async upgrade(c: Context, request: LiveRequest): Promise<Response> {
    const { groupId, userId, sessionId } = request;
    const { db } = this.options;
    if (!this.canUpgrade(c)) throw new AppError('VALIDATION_ERROR', 'This endpoint is a WebSocket: send Upgrade: websocket.');
    // The room listens from before the starting point is read until the socket joins it: what is
    // published meanwhile (an event, a removal, the orbit's farewell) follows the socket's `ready`.
    const entry = this.room(groupId);
    entry.pending++;
    let waiting = true;
    const joined = () => {
      if (!waiting) return;
      waiting = false;
      entry.pending--;
      this.dropIfEmpty(groupId, entry);
    };
    // Membership, the socket's starting point and the cap (every process's sockets: one lease row
    // each in Postgres), in one round trip.
    let admission: Admission;
    try {
      admission = await admitSocket(db, { groupId, userId, sessionId, holder: this.holder, ttlMs: this.leaseTtlMs });
    } catch (err) {
      joined();
      throw err;
    }
    const { lease } = admission;
    // The lease is held from now until the socket closes; a handshake that never completes gives it back.
    const held: HeldLease = { id: lease };
    this.leases.set(lease, held);
    const release = (): Promise<void> => {
      if (held.released) return held.released;
      // Not held any more: the hub gave back every lease at shutdown, or it lapsed (and was not taken again).
      const giveBack = () => (this.leases.delete(held.id) ? this.giveBack(held.id) : Promise.resolve());
      return (held.released = held.asking ? held.asking.then(giveBack) : giveBack());
    };
    let opened = false;
    setTimeout(() => {
      if (opened) return;
      release();
      joined();
    }, 10_000).unref();
    // The socket itself, not a helper's wrapper: nothing of this request (its context, headers and
    // URL) stays held for the socket's life. 10,000 idle sockets held 231 MiB through the wrapper.
    const acceptor: SocketAcceptor = {
      open: (ws) => {
        opened = true;
        const peer = this.open(ws, entry, request, admission, release);
        joined();
        held.peer = peer;
        if (held.lapsed) void this.readmit(held);
        // Every close frame (the answer to a client's close, or one the server sends) waits for the
        // lease to be gone: a client that has seen its socket close finds its place free on every
        // process. A database that does not answer holds it up 2 s at most (the lease then lapses).
        const sendClose = ws.close.bind(ws);
        ws.close = (code?: number, reason?: string | Buffer) => {
          void atMost(release(), 2000).then(() => sendClose(code, reason));
        };
        ws.on('pong', () => peer.ponged());
        ws.on('message', (data: Buffer, isBinary: boolean) => {
          peer.heard();
          const frame = isBinary ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data.toString('utf8');
          void this.rooms.get(groupId)?.room.message(peer, frame as string | ArrayBuffer);
        });
        ws.on('error', () => {}); // a protocol error (an oversized frame): 'close' follows
        ws.once('close', () => {
          release();
          this.remove(peer);
        });
      },
      lost: () => {
        release();
        joined();
      },
    };
    (c.env as Record<symbol, unknown>)[ACCEPT_SOCKET] = acceptor;
    return c.body(null, 200);
  }

  /**
   * Deletes a lease with the others given back in the same turn of the event loop (a shutdown
   * closes every socket at once: one statement per thousand). Should it fail, the lease lapses by
   * itself: it is no longer renewed.
   */
  private giveBack(lease: string): Promise<void> {
    this.toRelease.push(lease);
    this.releaseRun ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      const ids = this.toRelease;
      this.toRelease = [];
      this.releaseRun = undefined;
      return releaseLeases(this.options.db, ids).catch((err) =>
        this.options.logger.log('warn', { msg: 'live lease release failed', error: err instanceof Error ? err.name : String(err) }),
      );
    });
    return this.releaseRun;
  }

  /**
   * A lease that expired (this process stalled, or was cut off from the database, 20 to 30 s: it
   * renews every third of the TTL) no longer counts under the cap, and another process may have
   * dropped it. Its socket is asked back under the cap, as a new upgrade would be: kept with a new
   * lease where the cap has room, closed 1013 where sockets opened meanwhile took the places (else
   * the cap would be lost for good: helper-22 saw 10 sockets of one user), 4403/4401 where the
   * membership or session ended meanwhile. A database outage past the TTL thus costs no reconnect
   * storm when it ends.
   */
  private async renewLeases(): Promise<void> {
    const ids = [...this.leases.keys()];
    const renewed = await renewLeases(this.options.db, ids, this.leaseTtlMs);
    const lapsed: HeldLease[] = [];
    for (const id of ids) {
      const held = this.leases.get(id);
      if (!held || renewed.has(id)) continue;
      this.leases.delete(id);
      held.lapsed = true;
      if (held.peer) lapsed.push(held);
    }
    if (!lapsed.length) return;
    const outcomes = { kept: 0, closed: 0, gone: 0 };
    for (let i = 0; i < lapsed.length; i += READMIT_PARALLEL) {
      for (const outcome of await Promise.all(lapsed.slice(i, i + READMIT_PARALLEL).map((held) => this.readmit(held)))) outcomes[outcome]++;
    }
    this.options.logger.log('warn', { msg: 'live leases lapsed; their sockets were asked back under the cap', lapsed: lapsed.length, ...outcomes });
  }

  /**
   * Takes a new lease for a lapsed socket, as its upgrade did ('kept'), or closes it as that upgrade
   * would have been refused ('closed'): 1013 when the cap is full (or the database refuses), 4403
   * for a former member, 4401 for an ended session. 'gone': it closed meanwhile.
   */
  private async readmit(held: HeldLease): Promise<'kept' | 'closed' | 'gone'> {
    const peer = held.peer!;
    if (!peer.open || held.released) return 'gone';
    const { groupId, userId, sessionId, joinedAt } = peer.state;
    const asking = admitSocket(this.options.db, { groupId, userId, sessionId, holder: this.holder, ttlMs: this.leaseTtlMs }).then(
      ({ lease, start }) => {
        // Registered at once, so a close meanwhile (its release waits for this) or a shutdown gives it back.
        held.id = lease;
        held.lapsed = false;
        this.leases.set(lease, held);
        return start.joinedAt === joinedAt ? null : noSuchOrbit();
      },
      (err: unknown) => err,
    );
    held.asking = asking;
    this.asking.add(asking);
    const refused = await asking;
    this.asking.delete(asking);
    held.asking = undefined;
    if (held.released || !peer.open) return 'gone';
    if (!refused) return 'kept';
    const [code, reason] = (refused instanceof AppError && REFUSAL_CLOSE[refused.code]) || [CLOSE.overloaded, 'reconnect: this socket was not counted under the cap'];
    peer.close(code, reason);
    return 'closed';
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
    await atMost(Promise.all(this.asking), 2000);
    const held = [...this.leases.keys()];
    this.leases.clear();
    // A database that does not answer must not hold up the shutdown: the rows lapse by themselves.
    await atMost(releaseLeases(this.options.db, held), 2000);
  }

  private open(ws: WebSocket, entry: Room, request: LiveRequest, admission: Admission, release: () => Promise<void>): NodePeer {
    const peer = new NodePeer(ws, newSocketState({ ...request, joinedAt: admission.start.joinedAt }), this.maxBehind, release);
    // The entry kept for this upgrade, unless its handshake outlived the 10 s it is kept for.
    if (this.rooms.get(request.groupId) !== entry) entry = this.room(request.groupId);
    entry.peers.add(peer);
    this.armExpiry(peer);
    void entry.room.connect(peer, admission.start);
    return peer;
  }

  private remove(peer: NodePeer) {
    clearTimeout(peer.expiry);
    const groupId = peer.state.groupId;
    const entry = this.rooms.get(groupId);
    if (!entry) return;
    entry.peers.delete(peer);
    this.dropIfEmpty(groupId, entry);
  }

  /** A room is kept while it has sockets or upgrades on the way to it. */
  private dropIfEmpty(groupId: string, entry: Room) {
    if (!entry.peers.size && !entry.pending && this.rooms.get(groupId) === entry) this.rooms.delete(groupId);
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
    entry = { room, peers, missing: 0, pending: 0 };
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

  /** Drops the sockets that did not answer the last ping, and pings the others. */
  private heartbeat(interval: number) {
    const now = Date.now();
    for (const { peers } of this.rooms.values()) for (const p of peers) p.beat(now, interval);
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

  /**
   * Runs `task` every `ms`; returns a function that runs it now (unless it is running). A task
   * failing on every run (a database down for minutes) is logged once, then once recovered; any
   * task's recovery renews the leases at once, so sockets that lapsed meanwhile are counted again
   * without waiting up to a renewal interval.
   */
  private every(name: string, ms: number, task: () => Promise<void>): () => void {
    let running = false;
    let failing = false;
    const run = () => {
      if (running || this.options.databasePending?.()) return;
      running = true;
      task()
        .then(
          () => {
            if (!failing) return;
            failing = false;
            this.options.logger.log('info', { msg: 'live hub task recovered', task: name });
            this.renewNow?.();
          },
          (err) => {
            if (!failing) this.options.logger.log('error', { msg: 'live hub task failed; not logged again until it recovers', task: name, error: err instanceof Error ? err.name : String(err) });
            failing = true;
          },
        )
        .finally(() => (running = false));
    };
    const timer = setInterval(run, ms);
    timer.unref();
    this.timers.push(timer);
    return run;
  }
}
