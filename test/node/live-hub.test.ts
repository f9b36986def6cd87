// The Node hub's own duties: periodic session checks, the last_seq poll behind lost notifications,
// dropping a reader that falls behind without holding up the others, and closing on shutdown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import WebSocket from 'ws';
import pg from 'pg';
import { createTarget } from '#target';
import type { NodeLiveHub } from '../../src/adapters/live-node';
import { appendEvent } from '../../src/domain/events';
import { addMember, bearer, createOrbit, post, registerUser } from '../support/api';
import { livePath, openLive, range, readUntil, seqsUntil, writeEvents } from '../support/live';

/** A TCP path to `target` whose server-to-client direction carries `bytesPerSec`, as a slow downlink does. */
async function slowLink(target: URL, bytesPerSec: number): Promise<{ url: string; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    client.pipe(upstream);
    upstream.on('data', (d: Buffer) => {
      client.write(d);
      upstream.pause();
      setTimeout(() => upstream.resume(), (d.length * 1000) / bytesPerSec);
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => (client.destroy(), upstream.destroy()));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * A socket that answers pings until its `ready` (a loaded machine may ping before the server has
 * sent it), and after that only if `answering`; resolves at `ready`.
 */
function openPonging(url: string, headers: Record<string, string>, answering: boolean): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, autoPong: false });
    let ready = false;
    ws.on('ping', (data) => (!ready || answering) && ws.pong(data));
    ws.once('message', () => ((ready = true), resolve(ws)));
    ws.once('error', reject);
    ws.once('close', (code) => reject(new Error(`closed ${code} before ready`)));
  });
}

let t: Awaited<ReturnType<typeof createTarget>>;
beforeAll(async () => {
  // A short liveness interval: the check must run by itself, not only when a test asks for it.
  t = await createTarget({ live: { livenessIntervalMs: 200, pollIntervalMs: 1000 } });
});
afterAll(() => t?.close());

describe('Node live hub', () => {
  it('closes the sockets of an ended session 4401 at its periodic check', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const second = await (await t.fetch('/api/auth/login', post({ username: owner.username, password: owner.password }))).json();
    const s = await openLive(t, livePath(orbit.id), bearer(second.access_token));
    const sid = JSON.parse(Buffer.from(second.access_token.split('.')[1], 'base64url').toString()).sid;
    await t.sql('update sessions set revoked_at = now() where id = $1', [sid]);
    expect((await s.socket.closed).code).toBe(4401);
  });

  it('delivers an event whose notification never came, from the poll of last_seq', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const { socket } = await openLive(t, livePath(orbit.id), owner.auth);
    // Committed without any fan-out, as if the process that wrote it crashed before notifying.
    await t.deps.db.transaction((tx) => appendEvent(tx, { groupId: orbit.id, type: 'group_updated', actorId: owner.id, data: { silent: true } }));
    expect(await socket.next(10_000)).toMatchObject({ seq: 1, data: { silent: true } });
    socket.close();
  });

  it('a reader more than 4 MiB behind is closed 1013 while the others get every event', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const fast = await openLive(t, livePath(orbit.id), owner.auth);

    const slow = new WebSocket(t.url.replace('http', 'ws') + livePath(orbit.id), { headers: owner.auth });
    const frames: string[] = [];
    slow.on('message', (data) => frames.push(String(data)));
    const closed = new Promise<number>((resolve) => slow.on('close', (code) => resolve(code)));
    await new Promise((resolve) => slow.once('message', resolve)); // ready
    // Stops reading: the kernel's buffers fill, then the server's queue grows.
    (slow as unknown as { _socket: { pause(): void } })._socket.pause();

    // Rounds of 8 MiB until the server gives up on it (the kernel absorbs a few MiB first).
    const blob = 'x'.repeat(1024 * 1024);
    let written = 0;
    const slowOpen = async () => (t.deps.live as NodeLiveHub).countSockets(orbit.id, owner.id) === 2;
    while (written < 96 && (await slowOpen())) {
      await writeEvents(t, orbit.id, owner.id, 8, { data: (i) => ({ i, blob }) });
      written += 8;
      expect(await seqsUntil(fast.socket, written)).toEqual(range(written - 7, written));
      await new Promise((r) => setTimeout(r, 1500)); // past the grace a burst gets
    }
    expect(await slowOpen()).toBe(false);

    (slow as unknown as { _socket: { resume(): void } })._socket.resume();
    expect(await closed).toBe(1013);
    // What it did get was in order, without a gap.
    const seqs = frames.map((f) => JSON.parse(f)).filter((f) => f.group_id).map((f) => f.seq);
    expect(seqs).toEqual(range(1, seqs.length));
    fast.socket.close();
  });

  it('drops a socket that stops answering pings, and its place under the cap comes back; one that answers stays', async () => {
    const quick = await createTarget({ live: { heartbeatIntervalMs: 200 } });
    try {
      // A database slow to give the places back (as under load): the drop waits for it, so a client
      // reconnecting the moment it sees its socket gone is not refused 429.
      const hub = quick.deps.live as unknown as { giveBack(lease: string): Promise<void> };
      const giveBack = hub.giveBack.bind(hub);
      hub.giveBack = async (lease) => (await new Promise((resolve) => setTimeout(resolve, 500)), giveBack(lease));
      const owner = await registerUser(quick);
      const orbit = await createOrbit(quick, owner);
      const url = quick.url.replace('http', 'ws') + livePath(orbit.id);
      const open = (answering: boolean) => openPonging(url, owner.auth, answering);
      const silent = await Promise.all(Array.from({ length: 4 }, () => open(false)));
      const answering = await open(true);
      const gone = await Promise.all(silent.map((ws) => new Promise<number>((resolve) => ws.once('close', resolve))));
      expect(gone).toEqual([1006, 1006, 1006, 1006]); // dropped without a close frame, as a dead peer is
      expect(answering.readyState).toBe(WebSocket.OPEN);
      // Their places are free again: four more open beside the one still there.
      const more = await Promise.all(Array.from({ length: 4 }, () => open(true)));
      for (const ws of [answering, ...more]) ws.close();
    } finally {
      await quick.close();
    }
  });

  it('keeps a client on a slow link that is still reading what was sent before the ping (its pong comes after that)', async () => {
    const quick = await createTarget({ live: { heartbeatIntervalMs: 200 } });
    const link = await slowLink(new URL(quick.url), 64 * 1024);
    try {
      const owner = await registerUser(quick);
      const orbit = await createOrbit(quick, owner);
      const ws = new WebSocket(link.url.replace('http', 'ws') + livePath(orbit.id), { headers: owner.auth });
      const seqs: number[] = [];
      let closed: number | undefined;
      ws.on('close', (code) => (closed = code));
      await new Promise((resolve, reject) => (ws.once('message', resolve), ws.once('error', reject))); // ready
      ws.on('message', (data) => seqs.push(JSON.parse(String(data)).seq));
      // ~5 s of reading at this link's speed, many pings' worth: each ping waits behind it.
      const blob = 'x'.repeat(64 * 1024);
      await writeEvents(quick, orbit.id, owner.id, 5, { data: (i) => ({ i, blob }) });
      await expect.poll(() => seqs.length, { timeout: 30_000 }).toBe(5);
      expect([seqs, closed]).toEqual([range(1, 5), undefined]);
      ws.close();
    } finally {
      link.close();
      await quick.close();
    }
  });

  it('the grace for a late pong is bounded by how far behind a reader may be: one that reads but never answers goes', async () => {
    const quick = await createTarget({ live: { heartbeatIntervalMs: 200, maxBehindBytes: 128 * 1024 } });
    try {
      const owner = await registerUser(quick);
      const orbit = await createOrbit(quick, owner);
      const ws = await openPonging(quick.url.replace('http', 'ws') + livePath(orbit.id), owner.auth, false);
      const closed = new Promise<number>((resolve) => ws.once('close', resolve));
      // 1.5 MiB read at once: 96 s of grace at 16 KiB/s without the bound, 8 s with it.
      const blob = 'x'.repeat(16 * 1024);
      await writeEvents(quick, orbit.id, owner.id, 96, { data: (i) => ({ i, blob }) });
      const code = await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 40_000, 'still open'))]);
      expect(code).toBe(1006);
    } finally {
      await quick.close();
    }
  });

  it('an upgrade let in while shutdown was closing the sockets gets its 1001 too, not a drop 10 s later', async () => {
    const own = await createTarget();
    const owner = await registerUser(own);
    const orbit = await createOrbit(own, owner);
    const { socket: first } = await openLive(own, livePath(orbit.id), owner.auth);
    // Holds the next upgrade in its admission until shutdown has closed the open sockets.
    const hub = own.deps.live as NodeLiveHub;
    const upgrade = hub.upgrade.bind(hub);
    let letIn!: () => void;
    const gate = new Promise<void>((resolve) => (letIn = resolve));
    let asked!: () => void;
    const asking = new Promise<void>((resolve) => (asked = resolve));
    hub.upgrade = async (c, request) => (asked(), await gate, upgrade(c, request));
    const late = new WebSocket(own.url.replace('http', 'ws') + livePath(orbit.id), { headers: owner.auth });
    late.on('error', () => {});
    const lateClosed = new Promise<number>((resolve) => late.once('close', resolve));
    await asking;
    const closing = own.close();
    expect((await first.closed).code).toBe(1001);
    letIn();
    expect(await lateClosed).toBe(1001);
    await closing;
  });

  it('shutdown closes live sockets 1001', async () => {
    const other = await createTarget();
    const owner = await registerUser(other);
    const orbit = await createOrbit(other, owner);
    const { socket } = await openLive(other, livePath(orbit.id), owner.auth);
    await other.close();
    expect((await socket.closed).code).toBe(1001);
  });
});

// The hub reads a socket's starting point as it lets the upgrade in; the handshake completes later.
// Whatever is published in between must still reach the socket, with no poll to fall back on.
describe('Node live hub: what happens between letting a socket in and its handshake', () => {
  let u: Awaited<ReturnType<typeof createTarget>>;
  let between: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    u = await createTarget({ live: { pollIntervalMs: 0 } });
    const hub = u.deps.live as NodeLiveHub;
    const upgrade = hub.upgrade.bind(hub);
    hub.upgrade = async (c, request) => {
      const answer = await upgrade(c, request);
      const work = between;
      between = undefined;
      await work?.();
      return answer;
    };
  });
  afterAll(() => u?.close());

  it('an event written meanwhile follows ready', async () => {
    const owner = await registerUser(u);
    const orbit = await createOrbit(u, owner);
    between = () => writeEvents(u, orbit.id, owner.id, 2);
    const { socket, ready } = await openLive(u, livePath(orbit.id), owner.auth);
    expect(ready).toBe(0);
    expect(await seqsUntil(socket, 2)).toEqual([1, 2]);
    socket.close();
  });

  it('a removal meanwhile closes the socket 4403 after its member_left', async () => {
    const owner = await registerUser(u);
    const orbit = await createOrbit(u, owner);
    const member = await addMember(u, owner, orbit);
    between = async () => {
      expect((await u.fetch(`/api/groups/${orbit.id}/members/${member.id}`, { method: 'DELETE', headers: owner.auth })).status).toBe(204);
    };
    const { socket } = await openLive(u, livePath(orbit.id), member.auth);
    const frames = await readUntil(socket, (f) => f?.type === 'member_left');
    expect(frames.at(-1)).toMatchObject({ data: { user_id: member.id, reason: 'removed' } });
    expect((await socket.closed).code).toBe(4403);
  });

  it("the orbit's deletion meanwhile ends the socket with the farewell and 4403", async () => {
    const owner = await registerUser(u);
    const orbit = await createOrbit(u, owner);
    between = async () => {
      expect((await u.fetch(`/api/groups/${orbit.id}/members/${owner.id}`, { method: 'DELETE', headers: owner.auth })).status).toBe(204);
    };
    const { socket } = await openLive(u, livePath(orbit.id), owner.auth);
    expect(await socket.next()).toMatchObject({ type: 'member_left', data: { user_id: owner.id, group_deleted: true } });
    expect((await socket.closed).code).toBe(4403);
  });
});

describe('Node live hub: a lease dropped as expired while its socket lives', () => {
  let short: Awaited<ReturnType<typeof createTarget>>;
  beforeAll(async () => {
    // Renewed every second: another process drops a lease whose holder went 3 s without renewing.
    short = await createTarget({ live: { leaseTtlMs: 3000 } });
  });
  afterAll(() => short?.close());

  /** Lease rows of this user in this orbit that count (unexpired). */
  const counted = async (groupId: string, userId: string) =>
    (await short.sql<{ id: string }>('select id from live_socket_leases where group_id = $1 and user_id = $2 and expires_at > now()', [groupId, userId])).map((r) => r.id);

  /** Waits for the hub's renewal to have run on the lapsed rows: the user holds `n` counted leases, none of them in `old`. */
  async function renewedPast(groupId: string, userId: string, old: string[], n: number) {
    await expect.poll(async () => {
      const ids = await counted(groupId, userId);
      return ids.length === n && ids.every((id) => !old.includes(id));
    }, { timeout: 10_000, interval: 100 }).toBe(true);
  }

  it('sockets whose leases lapsed (their process cut off from the database past the TTL) are asked back: they stay open, counted under the cap', async () => {
    const owner = await registerUser(short);
    const orbit = await createOrbit(short, owner);
    const first = await Promise.all(Array.from({ length: 5 }, () => openLive(short, livePath(orbit.id), owner.auth)));
    const old = await counted(orbit.id, owner.id);
    // What an outage longer than the TTL leaves: every row expired (another process may delete them).
    await short.sql(`update live_socket_leases set expires_at = now() - interval '1 second' where group_id = $1`, [orbit.id]);
    await renewedPast(orbit.id, owner.id, old, 5);
    // Still open and still live: an event written now reaches every one of them.
    await writeEvents(short, orbit.id, owner.id, 1);
    for (const { socket, ready } of first) expect(await seqsUntil(socket, ready + 1)).toEqual([ready + 1]);
    await expect(short.socket(livePath(orbit.id), owner.auth)).rejects.toMatchObject({ status: 429 });
    expect((short.deps.live as NodeLiveHub).countSockets(orbit.id, owner.id)).toBe(5);
    for (const { socket } of first) socket.close();
  });

  it('an expired lease is not brought back by its late renewal: 5 sockets opened meanwhile keep the places, the old ones close 1013', async () => {
    const owner = await registerUser(short);
    const orbit = await createOrbit(short, owner);
    const first = await Promise.all(Array.from({ length: 5 }, () => openLive(short, livePath(orbit.id), owner.auth)));
    // Their holder went a TTL without renewing (stalled): expired, not yet deleted by anyone.
    await short.sql(`update live_socket_leases set expires_at = now() - interval '1 second' where group_id = $1`, [orbit.id]);
    const meanwhile = await Promise.all(Array.from({ length: 5 }, () => openLive(short, livePath(orbit.id), owner.auth)));
    for (const { socket } of first) expect((await socket.closed).code).toBe(1013);
    await expect(short.socket(livePath(orbit.id), owner.auth)).rejects.toMatchObject({ status: 429 });
    expect((short.deps.live as NodeLiveHub).countSockets(orbit.id, owner.id)).toBe(5);
    for (const { socket } of meanwhile) socket.close();
  });

  it('a lapsed socket whose session ended meanwhile closes 4401, one whose membership ended 4403: as their upgrades would be refused', async () => {
    const owner = await registerUser(short);
    const orbit = await createOrbit(short, owner);
    const member = await addMember(short, owner, orbit);
    const [mine, theirs] = await Promise.all([openLive(short, livePath(orbit.id), owner.auth), openLive(short, livePath(orbit.id), member.auth)]);
    // During an outage of this process, through another one: the owner logged out, the member's row went.
    const sid = JSON.parse(Buffer.from(owner.access.split('.')[1]!, 'base64url').toString()).sid;
    await short.sql('update sessions set revoked_at = now() where id = $1', [sid]);
    await short.sql('delete from group_members where group_id = $1 and user_id = $2', [orbit.id, member.id]);
    await short.sql(`update live_socket_leases set expires_at = now() - interval '1 second' where group_id = $1`, [orbit.id]);
    // The access check runs every 20 s here: the renewal (every second) is what closes them.
    expect((await mine.socket.closed).code).toBe(4401);
    expect((await theirs.socket.closed).code).toBe(4403);
    expect(await counted(orbit.id, owner.id)).toEqual([]);
    expect(await counted(orbit.id, member.id)).toEqual([]);
  });

  it('where sockets opened meanwhile took some places, as many lapsed ones as fit stay and the rest close 1013', async () => {
    const owner = await registerUser(short);
    const orbit = await createOrbit(short, owner);
    const first = await Promise.all(Array.from({ length: 5 }, () => openLive(short, livePath(orbit.id), owner.auth)));
    // Another process deleted them (its renewal drops expired rows), and 3 sockets came in meanwhile.
    await short.sql('delete from live_socket_leases where group_id = $1', [orbit.id]);
    const meanwhile = await Promise.all(Array.from({ length: 3 }, () => openLive(short, livePath(orbit.id), owner.auth)));
    const codes = await Promise.all(first.map(({ socket }) => Promise.race([socket.closed.then((c) => c.code), new Promise((r) => setTimeout(() => r('open'), 6000))])));
    expect(codes.filter((c) => c === 1013)).toHaveLength(3);
    expect(codes.filter((c) => c === 'open')).toHaveLength(2);
    expect(await counted(orbit.id, owner.id)).toHaveLength(5);
    await expect(short.socket(livePath(orbit.id), owner.auth)).rejects.toMatchObject({ status: 429 });
    expect((short.deps.live as NodeLiveHub).countSockets(orbit.id, owner.id)).toBe(5);
    for (const { socket } of [...first, ...meanwhile]) socket.close();
  });

  describe('while lapsed sockets are being asked back (Postgres: the test holds the lock their admissions take)', () => {
    const base = process.env.TEST_DATABASE_URL;

    /** 4 sockets of one user, their leases lapsed, the 4 re-admissions waiting on the (orbit, user) lock the test holds. */
    async function readmissionsHeld(target: typeof short, extraPlaces = 0) {
      const owner = await registerUser(target);
      const orbit = await createOrbit(target, owner);
      const mine = await Promise.all(Array.from({ length: 4 }, () => openLive(target, livePath(orbit.id), owner.auth)));
      // Places held by another process's sockets, far from lapsing.
      for (let i = 0; i < extraPlaces; i++) {
        await target.sql(`insert into live_socket_leases (group_id, user_id, holder, expires_at) values ($1, $2, gen_random_uuid(), now() + interval '1 hour')`, [orbit.id, owner.id]);
      }
      const locker = new pg.Client({ connectionString: target.databaseUrl });
      await locker.connect();
      const key = [`live:${orbit.id}:${owner.id}`];
      await locker.query(`select pg_advisory_lock(hashtextextended($1, 0))`, key);
      await target.sql(`update live_socket_leases set expires_at = now() - interval '1 second' where group_id = $1 and expires_at < now() + interval '1 minute'`, [orbit.id]);
      const waiting = async () => Number((await locker.query(`select count(*) from pg_stat_activity where datname = current_database() and wait_event = 'advisory'`)).rows[0].count);
      await expect.poll(waiting, { timeout: 10_000, interval: 50 }).toBe(4);
      return { owner, orbit, mine, locker, unlock: () => locker.query(`select pg_advisory_unlock(hashtextextended($1, 0))`, key) };
    }

    it.skipIf(!base)('a socket closed meanwhile sees its close only once the new lease is given back: reconnecting at once is let in', async () => {
      const { owner, orbit, mine, locker, unlock } = await readmissionsHeld(short, 1);
      try {
        mine[0]!.socket.close();
        // As a client does: reconnect the moment the close is seen.
        let seenAt = 0;
        const reconnect = mine[0]!.socket.closed.then(() => ((seenAt = performance.now()), openLive(short, livePath(orbit.id), owner.auth)));
        await new Promise((resolve) => setTimeout(resolve, 500));
        // Not seen yet: the lease being taken for it could still land after the close and hold the
        // place a reconnect needs (helper-34 saw 429 with the server's pool busy).
        expect(seenAt).toBe(0);
        await unlock();
        const again = await reconnect;
        for (const { socket } of [...mine.slice(1), again]) expect(socket.buffered.filter((f: any) => f?.type === 'error')).toEqual([]);
        expect(await counted(orbit.id, owner.id)).toHaveLength(5);
        again.socket.close();
        for (const { socket } of mine.slice(1)) socket.close();
      } finally {
        await locker.end();
      }
    });

    it.skipIf(!base)("the hub's shutdown waits for them and gives their new leases back too", async () => {
      const own = await createTarget({ live: { leaseTtlMs: 3000 } });
      try {
        const { owner, orbit, locker, unlock } = await readmissionsHeld(own);
        try {
          const closing = (own.deps.live as NodeLiveHub).close();
          await new Promise((resolve) => setTimeout(resolve, 300));
          await unlock();
          await closing;
          // And none lands later (a re-admission left running would commit its lease after the shutdown).
          for (let i = 0; i < 10; i++) {
            const left = await locker.query('select id from live_socket_leases where group_id = $1 and user_id = $2 and expires_at > now()', [orbit.id, owner.id]);
            expect(left.rows).toEqual([]);
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        } finally {
          await locker.end();
        }
      } finally {
        await own.close();
      }
    });
  });
});
