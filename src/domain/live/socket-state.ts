// What the server keeps per live socket. Plain JSON on purpose: the Durable Object stores it as
// the socket's attachment, so it survives hibernation (everything ordering needs is in here).
import type { LiveRequest } from '../../deps';
import { LIVE } from './protocol';

export interface LiveSocketState extends LiveRequest {
  /** Unix seconds: the socket closes 4401 then unless an auth frame renews it. */
  tokenExpiresAt: number;
  /** When the current membership began (ms): an older member_left of this user is history. */
  joinedAt: number;
  /** The last seq this socket was sent. */
  lastSeq: number;
  /** The resume point asked for (?after_seq), until the replay has run. */
  afterSeq: number | null;
  /** Replay done and `ready` sent: live events flow. */
  ready: boolean;
  /** Arrival times (ms) of the most recent frames, for the flood limit. */
  frames: number[];
  /** When the last typing frame was relayed (ms). */
  typingAt: number;
}

/** An authorized socket request and the membership its gateway checked. */
export type LiveIdentity = LiveRequest & { joinedAt: number };

export function newSocketState(r: LiveIdentity): LiveSocketState {
  const { groupId, userId, sessionId, tokenExpiresAt, joinedAt, afterSeq } = r;
  return { groupId, userId, sessionId, tokenExpiresAt, joinedAt, afterSeq, lastSeq: 0, ready: false, frames: [], typingAt: 0 };
}

/** Records a client frame; false when it is one too many for the window (close 1008). */
export function admitFrame(state: LiveSocketState, now: number): boolean {
  const since = now - LIVE.floodWindowMs;
  const recent = state.frames.filter((t) => t > since);
  recent.push(now);
  state.frames = recent.slice(-(LIVE.floodFrames + 1));
  return recent.length <= LIVE.floodFrames;
}

/** Whether a typing frame may be relayed now (at most one per interval; extra ones are dropped). */
export function admitTyping(state: LiveSocketState, now: number): boolean {
  if (now - state.typingAt < LIVE.typingIntervalMs) return false;
  state.typingAt = now;
  return true;
}
