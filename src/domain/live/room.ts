// One orbit's live sockets, runtime-free: the Node hub keeps one LiveRoom per orbit with sockets,
// the Durable Object one per instance. Every delivery step (replay on connect, published events,
// "the log has moved" hints) runs through one queue, so each socket sees seq strictly increasing,
// without gaps or duplicates: events arriving early are completed from the log, late ones dropped.
import type { Executor, LogLevel } from '../../deps';
import { AppError, sessionEnded } from '../errors';
import { viewEvent, type StoredEvent } from '../events';
import { verifyAccessToken } from '../tokens';
import { enforceAccess, socketAccess, startingPoint, type StartingPoint } from './access';
import { readRange, threadInOrbit } from './log';
import { CLOSE, frameBytes, LIVE, parseClientFrame, PONG, serverFrame } from './protocol';
import { admitFrame, admitTyping, type LiveSocketState } from './socket-state';

export interface LivePeer {
  readonly state: LiveSocketState;
  readonly open: boolean;
  /** Sends a text frame; may close the socket itself when its reader is too far behind (1013). */
  send(text: string): void;
  close(code: number, reason: string): void;
  /** Persists `state` where memory does not survive (the Durable Object's attachment). */
  save(): void;
}

export interface RoomHost {
  readonly groupId: string;
  readonly jwtSecret: Uint8Array;
  peers(): Iterable<LivePeer>;
  /** Runs database work (the Durable Object opens a connection for it, Node uses its pool). */
  withDb<T>(work: (db: Executor) => Promise<T>): Promise<T>;
  now(): number;
  log(level: LogLevel, fields: Record<string, unknown>): void;
  /** A typing frame was relayed here; other processes may want it too. */
  onTyping?(userId: string, threadId: string): void;
  /** A socket's authorization was renewed (its expiry moved). */
  onRenewed?(peer: LivePeer): void;
  /** Events just written to this room's ready sockets, each once (the fan-out lag is measured from their `at`). */
  onDelivered?(events: StoredEvent[]): void;
}

/** The orbit-deleted notice: never stored, so it carries its own seq and ends every socket. */
export const isFarewell = (e: StoredEvent) => e.type === 'member_left' && e.data.group_deleted === true;

/** Serialized events, shared by every recipient without a private part. */
class Views {
  private readonly shared = new Map<number, string>();
  text(e: StoredEvent, viewerId: string): string {
    if (e.private?.[viewerId]) return JSON.stringify(viewEvent(e, viewerId));
    let text = this.shared.get(e.seq);
    if (text === undefined) {
      text = JSON.stringify(viewEvent(e, viewerId));
      this.shared.set(e.seq, text);
    }
    return text;
  }
}

export class LiveRoom {
  private tail: Promise<void> = Promise.resolve();
  private readonly connecting = new Set<LivePeer>();
  /** Threads known to belong to this orbit (positive answers only, so a new thread is never refused). */
  private readonly threads = new Set<string>();
  /** The highest seq this room has heard of: published here, or reached by the log (a notification, a poll). */
  private head = 0;
  /** The orbit's farewell, once heard: a socket that joins after it gets it too. */
  private farewell: StoredEvent | undefined;

  constructor(private readonly host: RoomHost) {}

  /**
   * Replays what the socket missed (its afterSeq), then `ready`; live events follow. `start`: the
   * starting point read as the socket was let in (else it is read now, in turn). Events heard of
   * since then, while the socket was not ready for them, follow its `ready` from the log.
   */
  connect(peer: LivePeer, start?: StartingPoint): Promise<void> {
    this.connecting.add(peer);
    return this.enqueue(async () => {
      try {
        if (peer.open) await this.host.withDb((db) => this.replay(peer, db, start));
        if (peer.open && peer.state.ready && this.head > peer.state.lastSeq) await this.deliver([], this.head);
        if (peer.open && this.farewell) this.sayFarewell([peer], this.farewell);
      } catch (err) {
        this.fail('replay failed', err);
        peer.close(CLOSE.internal, 'replay failed; reconnect');
      } finally {
        this.connecting.delete(peer);
      }
    });
  }

  /** Committed events, in any order, possibly duplicated or with earlier ones missing. */
  publish(events: StoredEvent[]): Promise<void> {
    for (const e of events) if (!isFarewell(e)) this.head = Math.max(this.head, e.seq);
    return this.enqueue(() => this.deliver(events, 0));
  }

  /** The log has reached `seq` (a notification from another process, or a poll). */
  catchUpTo(seq: number): Promise<void> {
    this.head = Math.max(this.head, seq);
    if (!this.behind(seq)) return Promise.resolve();
    return this.enqueue(() => this.deliver([], seq));
  }

  /** Whether some ready socket has not yet been sent `seq`. */
  behind(seq: number): boolean {
    for (const p of this.host.peers()) if (p.open && p.state.ready && p.state.lastSeq < seq) return true;
    return false;
  }

  async message(peer: LivePeer, data: string | ArrayBuffer | Uint8Array): Promise<void> {
    if (!peer.open) return;
    try {
      await this.handleFrame(peer, data);
    } catch (err) {
      this.fail('live frame failed', err);
      if (peer.open) peer.send(serverFrame.error('INTERNAL', 'Something went wrong on the server.'));
    }
  }

  private async handleFrame(peer: LivePeer, data: string | ArrayBuffer | Uint8Array): Promise<void> {
    const s = peer.state;
    if (frameBytes(data) > LIVE.maxFrameBytes) return peer.close(CLOSE.tooBig, 'frame larger than 64 KiB');
    const admitted = admitFrame(s, this.host.now());
    peer.save();
    if (!admitted) return peer.close(CLOSE.policy, 'more than 20 frames in 10 s');
    const frame = parseClientFrame(data);
    switch (frame.type) {
      case 'ping':
        return peer.send(PONG);
      case 'invalid':
        return peer.send(serverFrame.error('VALIDATION_ERROR', frame.message));
      case 'auth':
        return this.renew(peer, frame.accessToken);
      case 'typing':
        if (!admitTyping(s, this.host.now())) return;
        peer.save();
        if (!(await this.isThread(frame.threadId))) {
          return peer.send(serverFrame.error('NOT_FOUND', 'No such thread in this orbit.'));
        }
        this.relayTyping(s.userId, frame.threadId);
        this.host.onTyping?.(s.userId, frame.threadId);
    }
  }

  /** Sends a typing notice to every ready socket of the other members. */
  relayTyping(userId: string, threadId: string): void {
    const text = serverFrame.typing(userId, threadId);
    for (const p of this.host.peers()) if (p.open && p.state.ready && p.state.userId !== userId) p.send(text);
  }

  /** The periodic check, one query: ended sessions close 4401, former members 4403. */
  async checkAccess(): Promise<void> {
    const open = [...this.host.peers()].filter((p) => p.open);
    if (open.length) await this.host.withDb((db) => this.keepEntitled(db, open));
  }

  /** Closes the sockets that may no longer stay open; returns the others. */
  private async keepEntitled(db: Executor, peers: LivePeer[]): Promise<LivePeer[]> {
    const access = await socketAccess(db, [...new Set(peers.map((p) => p.state.sessionId))], [this.host.groupId]);
    return peers.filter((p) => enforceAccess(p, access));
  }

  /**
   * Skips sockets to `target` with resync_required. What they skip may hold their own member_left,
   * so their membership is checked first: a former member is closed instead.
   */
  private async resync(peers: LivePeer[], target: number): Promise<void> {
    for (const p of await this.host.withDb((db) => this.keepEntitled(db, peers))) {
      p.send(serverFrame.resync(target));
      p.state.lastSeq = target;
      p.save();
    }
  }

  /** Closes 4401 every socket whose token has expired (and was not renewed). */
  expireTokens(): void {
    const now = this.host.now();
    for (const p of this.host.peers()) if (p.open && p.state.tokenExpiresAt * 1000 <= now) p.close(CLOSE.unauthorized, 'access token expired');
  }

  closeAll(code: number, reason: string): void {
    for (const p of this.host.peers()) if (p.open) p.close(code, reason);
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.tail.then(task).catch((err) => this.fail('live delivery failed', err));
    this.tail = run;
    return run;
  }

  private fail(msg: string, err: unknown) {
    this.host.log('error', { msg, group_id: this.host.groupId, error: err instanceof Error ? err.name : String(err) });
  }

  private async replay(peer: LivePeer, db: Executor, given?: StartingPoint): Promise<void> {
    const s = peer.state;
    if (s.ready) return; // replayed already (a cut-short replay and its connect may both ask)
    // Membership and head in one snapshot: a removal committed before it leaves no member here,
    // one committed after it puts member_left above `last`, where live delivery finds it.
    const start = given ?? (await startingPoint(db, s));
    if (!start) return peer.close(CLOSE.removed, 'orbit deleted');
    if (!start.sessionLive) return peer.close(CLOSE.unauthorized, 'session ended');
    if (start.joinedAt !== s.joinedAt) return peer.close(CLOSE.removed, 'no longer a member');
    const last = start.last;
    const want = s.afterSeq;
    const views = new Views();
    let resync = false;
    if (want === null || want === last) {
      s.lastSeq = last;
    } else if (want > last || last - want > LIVE.replayMaxEvents) {
      resync = true;
    } else {
      // The range must be whole: from want + 1 (not trimmed by retention: then the first page
      // starts later and reading stops there) to last, with no seq missing between (checked below).
      let bytes = 0;
      let first = true;
      const events = await readRange(db, this.host.groupId, want, last, (page) => {
        if (first && page[0]?.seq !== want + 1) return false;
        first = false;
        for (const e of page) bytes += views.text(e, s.userId).length;
        return bytes <= LIVE.replayMaxBytes;
      });
      if (bytes > LIVE.replayMaxBytes || events[0]?.seq !== want + 1 || events.at(-1)?.seq !== last) {
        resync = true;
      } else {
        s.lastSeq = want;
        for (const e of events) {
          if (e.seq !== s.lastSeq + 1) {
            resync = true;
            break;
          }
          if (!this.sendEvent(peer, e, views)) return peer.save();
        }
      }
    }
    if (resync) {
      peer.send(serverFrame.resync(last));
      s.lastSeq = last;
    }
    s.ready = true;
    s.afterSeq = null;
    peer.save();
    peer.send(serverFrame.ready(s.lastSeq));
  }

  private async deliver(incoming: StoredEvent[], upTo: number): Promise<void> {
    // A socket whose replay was cut short (a Durable Object evicted midway) replays now.
    for (const p of this.host.peers()) {
      if (p.open && !p.state.ready && !this.connecting.has(p)) await this.host.withDb((db) => this.replay(p, db));
    }
    const farewell = incoming.find(isFarewell);
    const stored = incoming.filter((e) => !isFarewell(e));
    const target = stored.reduce((max, e) => Math.max(max, e.seq), upTo);
    let ready = [...this.host.peers()].filter((p) => p.open && p.state.ready);
    const views = new Views();

    // Far behind (e.g. notifications lost for a long time): the same rule as a replay.
    const far = ready.filter((p) => target - p.state.lastSeq > LIVE.replayMaxEvents);
    if (far.length) {
      await this.resync(far, target);
      ready = ready.filter((p) => p.open);
    }
    if (ready.length) {
      const floor = Math.min(...ready.map((p) => p.state.lastSeq));
      if (target > floor) {
        const events = await this.range(stored, floor, target);
        // The log no longer holds what these sockets missed: they reload.
        const gapped: LivePeer[] = [];
        for (const p of ready) {
          for (const e of events) {
            if (e.seq <= p.state.lastSeq) continue;
            if (e.seq !== p.state.lastSeq + 1) {
              gapped.push(p);
              break;
            }
            if (!this.sendEvent(p, e, views)) break;
          }
          p.save();
        }
        this.host.onDelivered?.(events.filter((e) => e.seq > floor));
        if (gapped.length) await this.resync(gapped, target);
      }
    }

    if (farewell) {
      this.farewell = farewell;
      this.sayFarewell(this.host.peers(), farewell, views);
    }
  }

  private sayFarewell(peers: Iterable<LivePeer>, farewell: StoredEvent, views = new Views()) {
    for (const p of peers) {
      if (!p.open) continue;
      p.send(views.text(farewell, p.state.userId));
      p.close(CLOSE.removed, 'orbit deleted');
    }
  }

  /** Events floor < seq ≤ target: the ones in hand when they are complete, else from the log. */
  private async range(inHand: StoredEvent[], floor: number, target: number): Promise<StoredEvent[]> {
    const bySeq = new Map<number, StoredEvent>();
    for (const e of inHand) if (e.seq > floor && e.seq <= target) bySeq.set(e.seq, e);
    if (bySeq.size === target - floor) return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
    return this.host.withDb((db) => readRange(db, this.host.groupId, floor, target));
  }

  /** Sends one event in order; a member's own member_left ends its sockets. False once closed. */
  private sendEvent(peer: LivePeer, e: StoredEvent, views: Views): boolean {
    const s = peer.state;
    peer.send(views.text(e, s.userId));
    s.lastSeq = e.seq;
    if (e.type === 'member_left' && e.data.user_id === s.userId && e.at.getTime() >= s.joinedAt) {
      // Removal closes 4403; a deleted account's sockets end as its sessions do (4401).
      peer.close(e.data.reason === 'deleted' ? CLOSE.unauthorized : CLOSE.removed, 'no longer a member');
    }
    return peer.open;
  }

  private async renew(peer: LivePeer, token: string): Promise<void> {
    const s = peer.state;
    try {
      const claims = await verifyAccessToken(this.host.jwtSecret, token, new Date(this.host.now()));
      if (claims.userId !== s.userId) throw new AppError('UNAUTHENTICATED', 'This token belongs to another user.');
      // Renewal re-checks membership too: it must not carry a removed member's socket forward.
      const access = await this.host.withDb((db) => socketAccess(db, [claims.sessionId], [this.host.groupId]));
      const orbits = access.get(claims.sessionId);
      if (!orbits) throw sessionEnded();
      if (orbits.get(this.host.groupId) !== s.joinedAt) return peer.close(CLOSE.removed, 'no longer a member');
      if (!peer.open) return;
      s.sessionId = claims.sessionId;
      s.tokenExpiresAt = claims.expiresAt;
      peer.save();
      this.host.onRenewed?.(peer);
      peer.send(serverFrame.authorized(claims.expiresAt));
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      peer.send(serverFrame.error(err.code, err.message));
    }
  }

  private async isThread(threadId: string): Promise<boolean> {
    if (this.threads.has(threadId)) return true;
    const found = await this.host.withDb((db) => threadInOrbit(db, this.host.groupId, threadId));
    if (found) {
      if (this.threads.size >= 1000) this.threads.clear();
      this.threads.add(threadId);
    }
    return found;
  }
}
