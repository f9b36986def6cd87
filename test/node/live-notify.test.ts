// LISTEN/NOTIFY between Node processes (adapters/live-notify.ts): a process hears the other
// processes' notices, in order, and drops its own (every write it makes comes back to it).
// Needs a real Postgres: PGlite is one process.
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { eventsNotice, listenForNotices, sendNotice, type LiveNotice } from '../../src/adapters/live-notify';
import type { Db } from '../../src/deps';
import type { StoredEvent } from '../../src/domain/events';
import { jsonLogger } from '../../src/adapters/logger-json';
import { holdablePath } from '../support/tcp-path';

const postgres = process.env.TEST_DATABASE_URL;
if (!postgres) console.warn('live-notify: skipped, it needs a real Postgres (set TEST_DATABASE_URL)');

describe.skipIf(!postgres)('notices between processes', () => {
  const pool = new pg.Pool({ connectionString: postgres, max: 2 });
  const db = drizzle({ client: pool }) as unknown as Db;
  afterAll(() => pool.end());

  it("reach the other processes in the order sent, and not the sender's own", async () => {
    const heard: LiveNotice[] = [];
    const listener = listenForNotices(postgres!, 'process-a', (notice) => heard.push(notice), jsonLogger('silent'));
    await listener.ready;
    try {
      // The orbit id is unique to this run: other test files on the same database notify too.
      const orbit = crypto.randomUUID();
      const event = (seq: number): StoredEvent => ({ groupId: orbit, seq, type: 'thread_created', actorId: null, at: new Date(), data: {} });
      await sendNotice(db, eventsNotice('process-a', orbit, [event(1)]));
      await sendNotice(db, eventsNotice('process-b', orbit, [event(2)]));
      await sendNotice(db, { p: 'process-a', g: orbit, t: { u: 'someone', th: 'a-thread' } });
      await sendNotice(db, eventsNotice('process-c', orbit, [event(3), event(4)]));
      const deadline = Date.now() + 10_000;
      while (heard.filter((n) => n.g === orbit).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      // One more own notice behind them: had it been kept, it would be here by now.
      await sendNotice(db, eventsNotice('process-a', orbit, [event(5)]));
      await sendNotice(db, eventsNotice('process-b', orbit, [event(6)]));
      while (heard.filter((n) => n.g === orbit).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(heard.filter((n) => n.g === orbit)).toEqual([
        { p: 'process-b', g: orbit, s: 2 },
        { p: 'process-c', g: orbit, s: 4 },
        { p: 'process-b', g: orbit, s: 6 },
      ]);
    } finally {
      await listener.close();
    }
  });

  it('a LISTEN connection gone silent (a network partition) is replaced: notices reach the process again', async () => {
    const path = await holdablePath(new URL(postgres!));
    const url = new URL(postgres!);
    url.host = `127.0.0.1:${path.port}`;
    const orbit = crypto.randomUUID();
    const heard: LiveNotice[] = [];
    const log: string[] = [];
    const listener = listenForNotices(url.toString(), 'process-a', (notice) => notice.g === orbit && heard.push(notice), jsonLogger('info', (line) => log.push(JSON.parse(line).msg)), { everyMs: 200, withinMs: 300 });
    await listener.ready;
    try {
      // The connections open now stop carrying bytes both ways; new ones get through.
      path.hold();
      const deadline = Date.now() + 10_000;
      for (let seq = 1; heard.length === 0 && Date.now() < deadline; seq++) {
        await sendNotice(db, { p: 'process-b', g: orbit, s: seq });
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(heard.length).toBeGreaterThan(0);
      expect(log).toEqual(['live LISTEN connection lost; reconnecting', 'live LISTEN connection back']);
    } finally {
      await listener.close();
      path.close();
    }
  });
});
