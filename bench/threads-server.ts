// The baselines of the API benchmark (bench/threads.bench.ts), each in its own process so the load
// generator does not share its event loop. Built by esbuild and run with plain node (as the app is):
// `node threads-server.mjs <variant>` with BENCH_DATABASE_URL set; prints `listening <port>`.
// - bare:    node:http + pg doing the same work with the same SQL as the app (the floor): jose
//            verifies the token, the session answer is cached as the app caches it (15 s).
// - express: Express + pg running exactly the floor's handlers.
// The Orbital server itself is started as `npm start` starts it (bench/npm-start.ts), not here.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';
import pg from 'pg';
import { openNodePostgres } from '../src/adapters/db-node-postgres';
import { statementName } from '../src/db/named-statements';
import { threadPageQuery } from '../src/domain/threads';
import { BENCH_SECRET } from './threads-fixture';

const variant = process.argv[2] ?? 'bare';
const url = process.env.BENCH_DATABASE_URL!;
const POOL = 10; // the app's pool size (openNodePostgres)

// The statements the app sends for a thread or reply create, as captured from its pg client.
// The write gate: the orbit's next seq and the caller's membership and key in one statement.
const GATE_SQL = `update "groups" g set last_seq = g.last_seq + 1 where g.id = $1 and g.roster_version = (select s.roster_version from "groups" s where s.id = $2)
      returning g.last_seq as seq, 
  g.key_epoch,
  (select m.role from "group_members" m where m.group_id = g.id and m.user_id = $3) as role,
  (select (extract(epoch from m.joined_at) * 1000)::float8 from "group_members" m where m.group_id = g.id and m.user_id = $4) as joined_ms,
  exists (select 1 from "member_keys" k where k.group_id = g.id and k.user_id = $5 and k.key_epoch = g.key_epoch) as has_key`;
const INSERT_THREAD_SQL = `insert into "threads" ("id", "group_id", "author_id", "key_epoch", "encrypted_title", "encrypted_body", "reply_count", "media_count", "last_activity_at", "last_activity_seq", "created_at", "seq") values (default, $1, $2, $3, $4, $5, default, default, $6, $7, $8, $9) returning "id"`;
const THREAD_VIEW_SQL = `select "threads"."id", "threads"."group_id", "threads"."author_id", "users"."username", "threads"."key_epoch", "threads"."encrypted_title", "threads"."encrypted_body", "threads"."reply_count", "threads"."media_count", "threads"."last_activity_at", "threads"."last_activity_seq", "read_markers"."last_read_seq", (select count(*) from "replies" where "replies"."thread_id" = "threads"."id" and "replies"."seq" > coalesce("read_markers"."last_read_seq", 0) and not "replies"."deleted" and "replies"."author_id" is distinct from $1), "threads"."created_at", "threads"."seq" from "threads" left join "users" on "users"."id" = "threads"."author_id" left join "read_markers" on ("read_markers"."thread_id" = "threads"."id" and "read_markers"."user_id" = $2) where ("threads"."id" = $3 and exists (select 1 from "group_members" where "group_members"."group_id" = "threads"."group_id" and "group_members"."user_id" = $4)) limit $5`;
const EVENT_SQL = `insert into "orbit_events" ("group_id", "seq", "type", "actor_id", "at", "data", "private", "subject_id", "thread_id") values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`;
const THREAD_LOCK_SQL = `select "group_id", "author_id" from "threads" where "threads"."id" = $1 for update`;
const INSERT_REPLY_SQL = `insert into "replies" ("id", "thread_id", "group_id", "author_id", "key_epoch", "parent_reply_id", "encrypted_body", "deleted", "created_at", "seq") values (default, $1, $2, $3, $4, $5, $6, default, $7, $8) returning "id"`;
const BUMP_THREAD_SQL = `update "threads" set "reply_count" = "threads"."reply_count" + 1, "last_activity_at" = $1, "last_activity_seq" = $2 where "threads"."id" = $3`;
const REPLY_VIEW_SQL = `select "replies"."id", "replies"."thread_id", "replies"."group_id", "replies"."author_id", "users"."username", "replies"."key_epoch", "replies"."parent_reply_id", "replies"."encrypted_body", "replies"."deleted", "replies"."created_at", "replies"."seq" from "replies" left join "users" on "users"."id" = "replies"."author_id" where ("replies"."id" = $1 and exists (select 1 from "group_members" where "group_members"."group_id" = "replies"."group_id" and "group_members"."user_id" = $2)) limit $3`;
const NOTIFY_SQL = 'select pg_notify($1, $2)';
const SESSION_SQL = 'select 1 from sessions where id = $1 and user_id = $2 and revoked_at is null';
const MEMBER_SQL = 'select 1 from group_members where group_id = $1 and user_id = $2';

const names = new Map<string, string>();
/** Every statement named, as the app names its own (src/db/named-statements.ts): parsed and planned once per connection. */
function named(text: string, values: unknown[], rowMode?: 'array') {
  let name = names.get(text);
  if (!name) names.set(text, (name = statementName(text)));
  return { name, text, values, ...(rowMode ? { rowMode } : {}) };
}

type Handler = (req: IncomingMessage, res: ServerResponse, id: string, body?: unknown) => Promise<void>;

async function main(): Promise<number> {
  const h = await handlers();
  const guard = (res: ServerResponse, work: Promise<void>) => work.catch(() => send(res, 500, { error: { code: 'INTERNAL' } }));
  if (variant === 'express') {
    const express = (await import('express' as string)).default as any;
    const app = express();
    app.disable('x-powered-by');
    app.disable('etag');
    app.use(express.json({ limit: '128kb' }));
    app.get('/api/groups/:groupId/threads', (req: any, res: ServerResponse) => guard(res, h.list(req, res, req.params.groupId)));
    app.post('/api/threads', (req: any, res: ServerResponse) => guard(res, h.createThread(req, res, '', req.body)));
    app.post('/api/threads/:threadId/replies', (req: any, res: ServerResponse) => guard(res, h.createReply(req, res, req.params.threadId, req.body)));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    return (server.address() as AddressInfo).port;
  }
  const route = (req: IncomingMessage): [Handler, string] | null => {
    const path = req.url ?? '';
    let m: RegExpExecArray | null;
    if (req.method === 'GET' && (m = /^\/api\/groups\/([0-9a-f-]{36})\/threads(?:\?|$)/.exec(path))) return [h.list, m[1]!];
    if (req.method === 'POST' && path === '/api/threads') return [h.createThread, ''];
    if (req.method === 'POST' && (m = /^\/api\/threads\/([0-9a-f-]{36})\/replies$/.exec(path))) return [h.createReply, m[1]!];
    return null;
  };
  const server = createServer((req, res) => {
    const found = route(req);
    if (!found) return send(res, 404, { error: { code: 'NOT_FOUND' } });
    if (req.method === 'GET') return void guard(res, found[0](req, res, found[1]));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return send(res, 400, { error: { code: 'VALIDATION_ERROR' } });
      }
      void guard(res, found[0](req, res, found[1], body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

function send(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(text);
}

/** The page SQL exactly as the app sends it, with each parameter's role found by sentinel values. */
function pageSql(withCursor: boolean) {
  const { db } = openNodePostgres('postgres://unused/none', 1);
  const BEFORE = 987_001;
  const LIMIT = 987_653;
  const built = threadPageQuery(db, { groupId: 'G', viewerId: 'V', sort: 'created', before: withCursor ? BEFORE : undefined, limit: LIMIT }).toSQL();
  const roles = built.params.map((p) => (p === 'G' ? 'group' : p === 'V' ? 'viewer' : p === BEFORE ? 'before' : p === LIMIT ? 'limit' : 'unknown'));
  if (roles.includes('unknown') || !roles.includes('limit') || roles.includes('before') !== withCursor) {
    throw new Error(`unexpected parameters ${JSON.stringify(built.params)}`);
  }
  return { text: built.sql, roles };
}

const b64 = (v: unknown) => (v as Buffer).toString('base64');
const isB64 = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max && /^[A-Za-z0-9+/]*={0,2}$/.test(v);
const isEpoch = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1;
const threadView = (r: any[]) => ({
  id: r[0],
  group_id: r[1],
  author_id: r[2],
  author_username: r[3],
  key_epoch: r[4],
  encrypted_title: b64(r[5]),
  encrypted_body: b64(r[6]),
  reply_count: r[7],
  media_count: r[8],
  last_activity_at: (r[9] as Date).toISOString(),
  last_activity_seq: Number(r[10]),
  last_read_seq: r[11] === null ? 0 : Number(r[11]),
  unread_count: Number(r[12]),
  created_at: (r[13] as Date).toISOString(),
  seq: Number(r[14]),
});
const replyView = (r: any[]) => ({
  id: r[0],
  thread_id: r[1],
  group_id: r[2],
  author_id: r[3],
  author_username: r[4],
  key_epoch: r[5],
  parent_reply_id: r[6],
  encrypted_body: b64(r[7]),
  deleted: r[8],
  created_at: (r[9] as Date).toISOString(),
  seq: Number(r[10]),
});

class Refused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(code);
  }
}

async function handlers() {
  const pool = new pg.Pool({ connectionString: url, max: POOL, idleTimeoutMillis: 30_000 });
  pool.on('error', () => {});
  // Imported once, as the app does.
  const secret = await crypto.subtle.importKey('raw', new TextEncoder().encode(BENCH_SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const sessions = new Map<string, number>(); // session id → cached until (ms)
  const first = pageSql(false);
  const next = pageSql(true);
  const processId = crypto.randomUUID();

  /** The caller's user id once the token verifies and the session is live (cached 15 s); null otherwise. */
  async function authenticate(req: IncomingMessage, res: ServerResponse): Promise<string | null> {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    try {
      if (!token) throw new Error('no token');
      const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], issuer: 'orbital-relay', audience: 'orbital' });
      const sid = payload.sid as string;
      const until = sessions.get(sid);
      if (until !== undefined && until > Date.now()) return payload.sub!;
      const { rowCount } = await pool.query(named(SESSION_SQL, [sid, payload.sub]));
      if (!rowCount) throw new Error('revoked');
      sessions.set(sid, Date.now() + 15_000);
      return payload.sub!;
    } catch {
      send(res, 401, { error: { code: 'UNAUTHENTICATED' } });
      return null;
    }
  }

  /** One writing transaction; the NOTIFY other processes' live hubs wait for goes after commit, unawaited. */
  async function write<T>(groupOf: (c: pg.PoolClient) => Promise<string>, work: (c: pg.PoolClient, groupId: string) => Promise<T & { seq: number }>) {
    const client = await pool.connect();
    let out: T & { seq: number };
    let groupId: string;
    try {
      await client.query('begin');
      groupId = await groupOf(client);
      out = await work(client, groupId);
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
    pool.query(named(NOTIFY_SQL, ['orbital_live', JSON.stringify({ p: processId, g: groupId, s: out.seq })])).catch(() => {});
    return out;
  }

  /** Takes the orbit's next seq and checks the caller may write with this key epoch (rolled back if not). */
  async function gate(c: pg.PoolClient, groupId: string, userId: string, keyEpoch: number): Promise<number> {
    const { rows } = await c.query(named(GATE_SQL, [groupId, groupId, userId, userId, userId], 'array'));
    const row = rows[0];
    if (!row || row[2] === null) throw new Refused(404, 'NOT_FOUND');
    if (!row[4]) throw new Refused(403, 'KEY_PENDING');
    if (keyEpoch > row[1]) throw new Refused(400, 'VALIDATION_ERROR');
    return Number(row[0]);
  }

  const answer = async (res: ServerResponse, work: () => Promise<unknown>) => {
    try {
      send(res, 201, await work());
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      send(res, err.status, { error: { code: err.code } });
    }
  };

  return {
    async list(req: IncomingMessage, res: ServerResponse, groupId: string) {
      const sub = await authenticate(req, res);
      if (!sub) return;
      const query = new URL(req.url ?? '/', 'http://x').searchParams;
      const limit = Math.min(100, Number(query.get('limit') ?? 20) || 20);
      const cursor = query.get('cursor');
      let before: number | undefined;
      if (cursor) {
        const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown;
        if (!Array.isArray(parsed) || !Number.isInteger(parsed[0])) return send(res, 400, { error: { code: 'VALIDATION_ERROR' } });
        before = parsed[0];
      }
      const sql = before === undefined ? first : next;
      const values = sql.roles.map((r) => (r === 'group' ? groupId : r === 'viewer' ? sub : r === 'before' ? before : limit + 1));
      const { rows } = await pool.query(named(sql.text, values, 'array'));
      if (!rows.length) {
        const member = await pool.query(named(MEMBER_SQL, [groupId, sub]));
        if (!member.rowCount) return send(res, 404, { error: { code: 'NOT_FOUND' } });
      }
      const items = rows.slice(0, limit).map(threadView);
      const last = items[items.length - 1];
      const nextCursor = rows.length > limit && last ? Buffer.from(JSON.stringify([last.seq])).toString('base64url') : null;
      send(res, 200, { items, next_cursor: nextCursor });
    },

    async createThread(req: IncomingMessage, res: ServerResponse, _id: string, body: any) {
      const sub = await authenticate(req, res);
      if (!sub) return;
      if (typeof body?.group_id !== 'string' || !isEpoch(body.key_epoch) || !isB64(body.encrypted_title, 5464) || !isB64(body.encrypted_body, 87384)) {
        return send(res, 400, { error: { code: 'VALIDATION_ERROR' } });
      }
      await answer(res, () =>
        write(
          async () => body.group_id,
          async (c, groupId) => {
            const seq = await gate(c, groupId, sub, body.key_epoch);
            const now = new Date();
            const title = Buffer.from(body.encrypted_title, 'base64');
            const text = Buffer.from(body.encrypted_body, 'base64');
            const inserted = await c.query(named(INSERT_THREAD_SQL, [groupId, sub, body.key_epoch, title, text, now, seq, now, seq], 'array'));
            const { rows } = await c.query(named(THREAD_VIEW_SQL, [sub, sub, inserted.rows[0]![0], sub, 1], 'array'));
            const thread = threadView(rows[0]!);
            await c.query(named(EVENT_SQL, [groupId, seq, 'thread_created', sub, now, JSON.stringify({ ...thread, last_read_seq: 0, unread_count: 0 }), null, thread.id, thread.id]));
            return thread;
          },
        ),
      );
    },

    async createReply(req: IncomingMessage, res: ServerResponse, threadId: string, body: any) {
      const sub = await authenticate(req, res);
      if (!sub) return;
      if (!isEpoch(body?.key_epoch) || !isB64(body.encrypted_body, 87384)) return send(res, 400, { error: { code: 'VALIDATION_ERROR' } });
      await answer(res, () =>
        write(
          async (c) => {
            const { rows } = await c.query(named(THREAD_LOCK_SQL, [threadId], 'array'));
            if (!rows.length) throw new Refused(404, 'NOT_FOUND');
            return rows[0]![0] as string;
          },
          async (c, groupId) => {
            const seq = await gate(c, groupId, sub, body.key_epoch);
            const now = new Date();
            const text = Buffer.from(body.encrypted_body, 'base64');
            const inserted = await c.query(named(INSERT_REPLY_SQL, [threadId, groupId, sub, body.key_epoch, null, text, now, seq], 'array'));
            await c.query(named(BUMP_THREAD_SQL, [now, seq, threadId]));
            const { rows } = await c.query(named(REPLY_VIEW_SQL, [inserted.rows[0]![0], sub, 1], 'array'));
            const reply = replyView(rows[0]!);
            await c.query(named(EVENT_SQL, [groupId, seq, 'reply_created', sub, now, JSON.stringify(reply), null, reply.id, threadId]));
            return reply;
          },
        ),
      );
    },
  };
}

// Exit normally on SIGTERM so `--cpu-prof` can write its profile when profiling a variant.
process.on('SIGTERM', () => process.exit(0));

main().then(
  (port) => console.log(`listening ${port}`),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
