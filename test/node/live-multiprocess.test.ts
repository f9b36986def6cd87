// Two Node processes behind one load balancer share one Postgres: a socket on either receives every
// event written through the other (NOTIFY, then the log), typing crosses over too, and an event whose
// notification is lost still arrives (the poll of last_seq). Needs a real Postgres: PGlite is one process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { appendEvent } from '../../src/domain/events';
import { removeMember } from '../../src/domain/membership';
import { write } from '../../src/domain/tx';
import { addMember, createOrbit, registerUser } from '../support/api';
import { insertThread, livePath, openLive, seqsUntil } from '../support/live';
import { connectSocket } from '../support/node-target';
import { startServerProcess, type ServerProcess } from '../support/server-process';
import { TEST_ENV } from '../support/types';
import { byUser } from '../../src/domain/audit/record';

const postgres = process.env.TEST_DATABASE_URL;
if (!postgres) console.warn('live-multiprocess: skipped, it needs a real Postgres (set TEST_DATABASE_URL)');

describe.skipIf(!postgres)('live sockets across two Node processes on one Postgres', () => {
  let a: Awaited<ReturnType<typeof createTarget>>;
  // `npm start` in a child process on the same database.
  let second: ServerProcess;
  let dataDir: string;
  let b: Awaited<ReturnType<typeof createTarget>>;

  beforeAll(async () => {
    a = await createTarget();
    dataDir = mkdtempSync(join(tmpdir(), 'orbital-second-'));
    second = await startServerProcess({ ...TEST_ENV, LOG_LEVEL: 'info', DATABASE_URL: a.databaseUrl!, DATA_DIR: dataDir });
    // The same target helpers, pointed at the second process.
    b = { ...a, url: second.url, fetch: (path, init = {}) => fetch(second.url + path, init), socket: (path, headers) => connectSocket(second.url, path, headers) };
  });
  afterAll(async () => {
    await second?.kill('SIGTERM');
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    await a?.close();
  });

  it('a socket on one process receives events written through the other, both ways', async () => {
    const owner = await registerUser(a);
    const orbit = await createOrbit(a, owner);
    const onB = await openLive(b, livePath(orbit.id), owner.auth);
    const onA = await openLive(a, livePath(orbit.id), owner.auth);
    const member = await addMember(a, owner, orbit); // written through A: joined, key delivered
    expect(await seqsUntil(onB.socket, 2)).toEqual([1, 2]);
    expect(await seqsUntil(onA.socket, 2)).toEqual([1, 2]);

    const late = await registerUser(b);
    const invite = await (await a.fetch(`/api/groups/${orbit.id}/invites`, { method: 'POST', headers: { ...owner.auth, 'content-type': 'application/json' }, body: '{}' })).json();
    const joined = await b.fetch('/api/groups/join', { method: 'POST', headers: { ...late.auth, 'content-type': 'application/json' }, body: JSON.stringify({ invite_code: invite.code }) });
    expect(joined.status).toBe(200);
    expect(await onA.socket.next()).toMatchObject({ type: 'member_joined', seq: 3, data: { user_id: late.id } });
    expect(await onB.socket.next()).toMatchObject({ type: 'member_joined', seq: 3 });
    expect(member.id).not.toBe(late.id);
    onA.socket.close();
    onB.socket.close();
  });

  it('typing on one process reaches the sockets on the other', async () => {
    const owner = await registerUser(a);
    const orbit = await createOrbit(a, owner);
    const member = await addMember(a, owner, orbit);
    const threadId = await insertThread(a, orbit.id, owner.id);
    const onA = await openLive(a, livePath(orbit.id), owner.auth);
    const onB = await openLive(b, livePath(orbit.id), member.auth);
    onA.socket.send(JSON.stringify({ type: 'typing', thread_id: threadId }));
    expect(await onB.socket.next()).toEqual({ type: 'typing', user_id: owner.id, thread_id: threadId });
    onA.socket.close();
    onB.socket.close();
  });

  it('an event whose NOTIFY never went out still arrives on the other process', async () => {
    const owner = await registerUser(a);
    const orbit = await createOrbit(a, owner);
    const onB = await openLive(b, livePath(orbit.id), owner.auth);
    await a.deps.db.transaction((tx) => appendEvent(tx, { groupId: orbit.id, type: 'group_updated', actorId: owner.id, data: { quiet: true } }));
    expect(await onB.socket.next(10_000)).toMatchObject({ seq: 1, data: { quiet: true } });
    onB.socket.close();
  });

  it('removal and orbit deletion written on one process close the sockets on the other', async () => {
    const owner = await registerUser(a);
    const orbit = await createOrbit(a, owner);
    const member = await addMember(a, owner, orbit);
    const memberOnB = await openLive(b, livePath(orbit.id), member.auth);
    const ownerOnB = await openLive(b, livePath(orbit.id), owner.auth);
    const leave = (userId: string) =>
      write(a.deps, async (tx, outbox) => outbox.add(...(await removeMember(tx, { groupId: orbit.id, userId, actorId: userId, reason: 'left', now: new Date(), by: byUser(userId, null) })).events));
    await leave(member.id);
    expect(await memberOnB.socket.next()).toMatchObject({ type: 'member_left', data: { user_id: member.id } });
    expect((await memberOnB.socket.closed).code).toBe(4403);
    await leave(owner.id);
    const frames = [await ownerOnB.socket.next(), await ownerOnB.socket.next()];
    expect(frames.map((f) => [f.type, f.data.user_id, f.data.group_deleted])).toEqual([
      ['member_left', member.id, undefined],
      ['member_left', owner.id, true],
    ]);
    expect((await ownerOnB.socket.closed).code).toBe(4403);
  });
});
