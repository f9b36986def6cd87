// The live subscription against the real server: events in seq order, a dropped socket that
// reconnects and resumes with after_seq without gaps or duplicates, resync_required reported when
// the gap is too large to replay, typing, and the end for good when the member is removed.
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { OrbitalClient, SecureClient, subscribe, type LiveStatus, type LiveSubscription, type OrbitEvent } from '../../src/client';
import { unique } from '../support/api';
import { createTarget } from '../support/node-target';
import { offeredOperations, requireOperations, serverUrl } from '../support/offered';

const LIVE_OPS = ['post /api/groups/{}/live/ticket', 'post /api/threads', 'get /api/groups/{}/members', 'put /api/groups/{}/members/{}/keys', 'post /api/groups/{}/messages'];

let t: Awaited<ReturnType<typeof createTarget>>;
let server: string;
let offered = new Set<string>();
const subscriptions: LiveSubscription[] = [];

beforeAll(async () => {
  t = await createTarget();
  server = await serverUrl(t);
  offered = await offeredOperations(t);
});

afterAll(async () => {
  subscriptions.forEach((s) => s.close());
  await t?.close();
});

const needsLive = (ctx: TestContext) => requireOperations(ctx, offered, LIVE_OPS);

async function person() {
  return (await SecureClient.register(new OrbitalClient({ server }), { username: unique('live'), password: 'correct horse battery staple' })).secure;
}

/** An orbit with a member holding the key. */
async function orbitWithMember() {
  const owner = await person();
  const member = await person();
  const { group, invite } = await owner.createOrbit('live orbit');
  await member.api.joinGroup(invite.code!);
  await owner.deliver(group.id, { user_id: member.identity.userId, username: member.identity.username, public_key: member.identity.keys.publicJwk as never });
  return { owner, member, groupId: group.id };
}

/** Collects what a subscription reports, with a way to wait for it. */
function watch(secure: SecureClient, groupId: string, afterSeq?: number) {
  const events: OrbitEvent[] = [];
  const statuses: LiveStatus[] = [];
  const resyncs: number[] = [];
  const typing: { user_id: string; thread_id: string }[] = [];
  let ready: () => void;
  const readyOnce = new Promise<void>((r) => (ready = r));
  const sub = subscribe(secure.api, groupId, {
    afterSeq,
    backoff: { initialMs: 100, maxMs: 1000 },
    onEvent: (e) => void events.push(e),
    onReady: () => ready(),
    onResync: (seq) => void resyncs.push(seq),
    onStatus: (s) => void statuses.push(s),
    onTyping: (x) => void typing.push(x),
  });
  subscriptions.push(sub);
  const until = async (test: () => boolean, what: string, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!test()) {
      if (Date.now() > deadline) throw new Error(`never saw ${what}: ${JSON.stringify(events.map((e) => [e.seq, e.type]))} ${statuses}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { sub, events, statuses, resyncs, typing, ready: readyOnce, until };
}

describe('live subscription', () => {
  it('hands over events in seq order and survives a dropped socket without gaps or duplicates', async (ctx) => {
    needsLive(ctx);
    const { owner, member, groupId } = await orbitWithMember();
    const w = watch(member, groupId);
    await w.ready;
    const first = await owner.postThread(groupId, 'first', '');
    await w.until(() => w.events.some((e) => e.type === 'thread_created' && e.data.id === first.id), 'the first thread');

    w.sub.reconnect();
    await owner.postThread(groupId, 'second', '');
    const third = await owner.postThread(groupId, 'third', '');
    await w.until(() => w.events.some((e) => e.data.id === third.id), 'the third thread');
    expect(w.statuses).toContain('reconnecting');
    const seqs = w.events.map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
    const described = await Promise.all(w.events.filter((e) => e.type === 'thread_created').map((e) => member.describeEvent(e)));
    expect(described.map((e) => e.text)).toEqual(['first', 'second', 'third']);
    expect(w.sub.lastSeq).toBe(third.seq);
  });

  it('resumes from a given seq and reports resync_required when the gap is too large to replay', async (ctx) => {
    needsLive(ctx);
    const { owner, member, groupId } = await orbitWithMember();
    const from = (await owner.api.getGroup(groupId)).last_seq;
    const cipher = await owner.currentCipher(groupId);
    const envelope = await cipher.seal('envelope', 'x');
    // More than the socket replays (1,000 events); sent without Idempotency-Key to keep this quick.
    const send = () => owner.api.http.json({ method: 'POST', path: `/api/groups/${groupId}/messages`, json: { key_epoch: 1, envelope } });
    for (let i = 0; i < 1002; i += 50) await Promise.all(Array.from({ length: Math.min(50, 1002 - i) }, send));
    const last = (await owner.api.getGroup(groupId)).last_seq;
    const w = watch(member, groupId, from);
    await w.ready;
    expect(w.resyncs).toEqual([last]);
    expect(w.events).toEqual([]);
    expect(w.sub.lastSeq).toBe(last);

    const recent = watch(member, groupId, last - 2);
    await recent.ready;
    expect(recent.events.map((e) => e.seq)).toEqual([last - 1, last]);
  });

  it('passes typing notices to the others', async (ctx) => {
    needsLive(ctx);
    const { owner, member, groupId } = await orbitWithMember();
    const thread = await owner.postThread(groupId, 'typing here', '');
    const listener = watch(owner, groupId);
    const typist = watch(member, groupId);
    await Promise.all([listener.ready, typist.ready]);
    typist.sub.sendTyping(thread.id);
    await listener.until(() => listener.typing.length > 0, 'a typing notice');
    expect(listener.typing).toEqual([{ user_id: member.identity.userId, thread_id: thread.id }]);
  });

  it('ends for good (4403) when the member is removed', async (ctx) => {
    needsLive(ctx);
    const { owner, member, groupId } = await orbitWithMember();
    const w = watch(member, groupId);
    await w.ready;
    await owner.api.removeMember(groupId, member.identity.userId);
    await expect(w.sub.closed).resolves.toMatchObject({ code: 4403 });
    expect(w.statuses.at(-1)).toBe('closed');
  });
});
