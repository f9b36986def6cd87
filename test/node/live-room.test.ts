// The runtime-free room and socket rules, driven directly: the corners the socket tests cannot
// reach cheaply (a socket far behind, a log that lost events, the frame and typing windows).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { LiveRoom, type LivePeer } from '../../src/domain/live/room';
import { admitFrame, admitTyping, newSocketState, type LiveSocketState } from '../../src/domain/live/socket-state';
import { createOrbit, registerUser, type TestUser } from '../support/api';
import { writeEvents } from '../support/live';

let t: Awaited<ReturnType<typeof createTarget>>;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

class FakePeer implements LivePeer {
  sent: any[] = [];
  closedWith: number | null = null;
  saves = 0;
  constructor(readonly state: LiveSocketState) {}
  get open() {
    return this.closedWith === null;
  }
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  close(code: number) {
    this.closedWith = code;
  }
  save() {
    this.saves++;
  }
}

function roomWith(groupId: string, peers: FakePeer[]) {
  return new LiveRoom({
    groupId,
    jwtSecret: new Uint8Array(32),
    peers: () => peers,
    withDb: (work) => work(t.deps.db),
    now: () => Date.now(),
    log: () => {},
  });
}

/** The socket state of the user's real session and membership (the room checks both when it skips ahead). */
async function stateOf(groupId: string, user: TestUser, afterSeq: number | null): Promise<LiveSocketState> {
  const sessionId = JSON.parse(Buffer.from(user.access.split('.')[1]!, 'base64url').toString()).sid as string;
  const [member] = await t.sql<{ joined_at: Date }>('select joined_at from group_members where group_id = $1 and user_id = $2', [groupId, user.id]);
  return newSocketState({ groupId, userId: user.id, sessionId, tokenExpiresAt: 2e9, joinedAt: new Date(member!.joined_at).getTime(), afterSeq });
}

const peerAt = async (groupId: string, user: TestUser, lastSeq: number) => new FakePeer({ ...(await stateOf(groupId, user, null)), lastSeq, ready: true });

describe('live room rules', () => {
  it('a socket more than 1,000 events behind the log gets resync_required, one close by gets the events', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await writeEvents(t, orbit.id, owner.id, 1005, { perTx: 1005 });
    const far = await peerAt(orbit.id, owner, 2);
    const near = await peerAt(orbit.id, owner, 1000);
    await roomWith(orbit.id, [far, near]).catchUpTo(1005);
    expect(far.sent).toEqual([{ type: 'resync_required', seq: 1005 }]);
    expect(near.sent.map((e) => e.seq)).toEqual([1001, 1002, 1003, 1004, 1005]);
    expect([far.state.lastSeq, near.state.lastSeq]).toEqual([1005, 1005]);
    expect(far.saves + near.saves).toBeGreaterThan(0);
  });

  it('when the log no longer holds what a socket missed, it gets resync_required rather than a gap', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await writeEvents(t, orbit.id, owner.id, 6, { perTx: 6 });
    await t.sql('delete from orbit_events where group_id = $1 and seq <= 3', [orbit.id]); // past retention
    const peer = await peerAt(orbit.id, owner, 1);
    await roomWith(orbit.id, [peer]).catchUpTo(6);
    expect(peer.sent).toEqual([{ type: 'resync_required', seq: 6 }]);
    const resumed = new FakePeer(await stateOf(orbit.id, owner, 1));
    await roomWith(orbit.id, [resumed]).connect(resumed);
    expect(resumed.sent).toEqual([
      { type: 'resync_required', seq: 6 },
      { type: 'ready', seq: 6 },
    ]);
  });

  it('a replay whose range the log holds only in part (its end missing) gets resync_required, not events and a gap', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await writeEvents(t, orbit.id, owner.id, 6, { perTx: 6 });
    await t.sql('delete from orbit_events where group_id = $1 and seq = 6', [orbit.id]);
    const resumed = new FakePeer(await stateOf(orbit.id, owner, 3));
    await roomWith(orbit.id, [resumed]).connect(resumed);
    expect(resumed.sent).toEqual([
      { type: 'resync_required', seq: 6 },
      { type: 'ready', seq: 6 },
    ]);
  });

  it('a socket let in at seq 1 while the room heard of 3 before it joined: ready at 1, then 2 and 3 from the log', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    await writeEvents(t, orbit.id, owner.id, 3, { perTx: 3 });
    const peers: FakePeer[] = [];
    const room = roomWith(orbit.id, peers);
    await room.catchUpTo(3); // heard of before the socket was in the room: nobody to send it to
    const peer = new FakePeer(await stateOf(orbit.id, owner, null));
    peers.push(peer);
    await room.connect(peer, { last: 1, joinedAt: peer.state.joinedAt, sessionLive: true });
    expect(peer.sent.map((f) => `${f.type} ${f.seq}`)).toEqual(['ready 1', `${peer.sent[1].type} 2`, `${peer.sent[2].type} 3`]);
    expect(peer.sent.slice(1).every((f) => f.type !== 'ready' && f.type !== 'resync_required')).toBe(true);
  });

  it('a member_left older than the current membership is history: it does not close the socket', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const peer = await peerAt(orbit.id, owner, 0);
    peer.state.joinedAt = Date.now();
    const left = { groupId: orbit.id, seq: 1, type: 'member_left' as const, actorId: owner.id, at: new Date(peer.state.joinedAt - 1000), data: { user_id: owner.id, reason: 'left' } };
    await roomWith(orbit.id, [peer]).publish([left]);
    expect([peer.sent.length, peer.closedWith]).toEqual([1, null]);
    await roomWith(orbit.id, [peer]).publish([{ ...left, seq: 2, at: new Date() }]);
    expect([peer.sent.length, peer.closedWith]).toEqual([2, 4403]);
  });

  it('frames: the 21st within 10 s is refused, and the window slides', () => {
    const s = newSocketState({ groupId: 'g', userId: 'u', sessionId: 's', tokenExpiresAt: 0, joinedAt: 0, afterSeq: null });
    for (let i = 0; i < 20; i++) expect(admitFrame(s, 1000 + i)).toBe(true);
    expect(admitFrame(s, 1020)).toBe(false);
    expect(admitFrame(s, 11_001)).toBe(true); // the first frames have left the window
    expect(s.frames.length).toBeLessThanOrEqual(21);
  });

  it('typing: one per 2 s', () => {
    const s = newSocketState({ groupId: 'g', userId: 'u', sessionId: 's', tokenExpiresAt: 0, joinedAt: 0, afterSeq: null });
    expect([admitTyping(s, 10_000), admitTyping(s, 11_999), admitTyping(s, 12_000)]).toEqual([true, false, true]);
  });
});
