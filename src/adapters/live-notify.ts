// Postgres LISTEN/NOTIFY between Node processes sharing one database. Notices stay small: the orbit
// and its newest seq (receivers read the events from the log), a typing notice, or the one event
// that is never stored (the orbit-deleted farewell, which the log cannot hand out).
import pg from 'pg';
import { sql } from 'drizzle-orm';
import { statement } from '../db/statement';
import type { Db, Logger } from '../deps';
import { atMost } from '../domain/deadline';
import type { StoredEvent } from '../domain/events';
import { isFarewell } from '../domain/live/room';
import { dropConnection } from './silent-connections';

const CHANNEL = 'orbital_live';

export interface LiveNotice {
  /** The sending process, so it can skip its own notices. */
  p: string;
  g: string;
  /** The newest seq committed. */
  s?: number;
  /** A typing frame relayed in the sender's process. */
  t?: { u: string; th: string };
  /** The orbit-deleted farewell (never stored). */
  f?: Omit<StoredEvent, 'at'> & { at: string };
}

/** The notice for a batch of committed events. */
export function eventsNotice(process: string, groupId: string, events: StoredEvent[]): LiveNotice {
  const farewell = events.find(isFarewell);
  if (farewell) return { p: process, g: groupId, f: { ...farewell, at: farewell.at.toISOString() } };
  return { p: process, g: groupId, s: Math.max(...events.map((e) => e.seq)) };
}

// One per write: built once (db/statement.ts), not rendered by drizzle each time.
const notifyStatement = statement(() => sql`select pg_notify(${CHANNEL}, ${sql.placeholder('payload')})`);

export async function sendNotice(db: Db, notice: LiveNotice): Promise<void> {
  await notifyStatement.run(db, { payload: JSON.stringify(notice) });
}

export function readNotice(payload: string | undefined): LiveNotice | null {
  try {
    const n = JSON.parse(payload ?? '') as LiveNotice;
    return typeof n?.p === 'string' && typeof n.g === 'string' ? n : null;
  } catch {
    return null;
  }
}

export function farewellEvent(notice: LiveNotice): StoredEvent | null {
  return notice.f ? { ...notice.f, at: new Date(notice.f.at) } : null;
}

/** How often the LISTEN connection is asked to answer, and how long it may take. */
export interface ListenBound {
  everyMs: number;
  withinMs: number;
}

/**
 * LISTENs on a dedicated connection and reconnects when it drops (the hub's poll of last_seq covers
 * whatever was missed meanwhile). A connection that goes silent (a network partition) closes no
 * socket for the kernel's ~15 minutes: asked to answer now and then, it is replaced when it does not.
 */
export function listenForNotices(
  url: string,
  self: string,
  onNotice: (notice: LiveNotice) => void,
  logger: Logger,
  bound: ListenBound = { everyMs: 30_000, withinMs: 10_000 },
): { ready: Promise<void>; close(): Promise<void> } {
  // This process hears its own notice of every write it makes: known by the sender that leads
  // the payload (eventsNotice and typing put `p` first), it is dropped unparsed.
  const own = `{"p":${JSON.stringify(self)},`;
  let client: pg.Client | null = null;
  let stopped = false;
  let retry: ReturnType<typeof setTimeout> | undefined;
  let check: ReturnType<typeof setInterval> | undefined;
  // Logged when lost and when back, not at each try in between (one a second while a database is down).
  let lost = false;

  const connect = async (): Promise<void> => {
    // Every statement bounded, LISTEN included: pg's per-statement timer costs nothing on a connection this quiet.
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: bound.withinMs, query_timeout: bound.withinMs });
    client = c;
    c.on('notification', (msg) => {
      if (msg.channel !== CHANNEL || msg.payload?.startsWith(own)) return;
      const notice = readNotice(msg.payload);
      if (notice) onNotice(notice);
    });
    const reconnect = () => {
      if (stopped || client !== c) return;
      client = null;
      clearInterval(check);
      dropConnection(c);
      if (!lost) logger.log('warn', { msg: 'live LISTEN connection lost; reconnecting' });
      lost = true;
      retry = setTimeout(start, 1000);
      retry.unref?.();
    };
    c.on('error', reconnect);
    c.on('end', reconnect);
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANNEL}`);
    } catch {
      return reconnect();
    }
    if (stopped || client !== c) return;
    if (lost) logger.log('info', { msg: 'live LISTEN connection back' });
    lost = false;
    check = setInterval(() => void c.query('select 1').catch(reconnect), bound.everyMs);
    check.unref();
  };
  const start = () => connect();

  const ready = connect();
  return {
    ready,
    async close() {
      stopped = true;
      clearTimeout(retry);
      clearInterval(check);
      const c = client;
      client = null;
      // Ending waits for the server's side to close: one that stopped answering would hold it for ever.
      if (c) await atMost(c.end(), 2000);
    },
  };
}
