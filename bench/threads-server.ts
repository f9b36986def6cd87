// One server of the thread-list benchmark, in its own process so the load generator does not
// share its event loop: `tsx bench/threads-server.ts <variant>` with BENCH_DATABASE_URL set;
// prints `listening <port>`. Variants:
// - app:       the Orbital Node adapter (Hono, drizzle, node-postgres), as deployed.
// - bare:      node:http + pg doing the same work with the same SQL: jose verifies the token, the
//              session answer is cached as the app caches it, one query reads the page with the
//              membership check inside (the floor).
// - bare-2q:   node:http + pg, session and membership checked by one query, then the page.
// - express:   Express + pg doing exactly what `bare` does (skipped when express is not installed).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';
import pg from 'pg';
import { openNodePostgres } from '../src/adapters/db-node-postgres';
import { parseConfig } from '../src/config';
import { threadPageQuery } from '../src/domain/threads';
import { buildNodeDeps } from '../src/runtime/node-deps';
import { startServer } from '../src/runtime/node-server';
import { BENCH_SECRET } from './threads-fixture';

const variant = process.argv[2] ?? 'app';
const url = process.env.BENCH_DATABASE_URL!;
const POOL = 10;

async function main(): Promise<number> {
  if (variant === 'app') {
    const config = parseConfig({ DATABASE_URL: url, JWT_SECRET: BENCH_SECRET, RATE_LIMIT: 'off', LOG_LEVEL: 'silent' });
    const { db } = openNodePostgres(url, POOL);
    const server = await startServer(await buildNodeDeps({ config, db, blobRoot: '/tmp/orbital-bench-blobs' }), 0, '127.0.0.1');
    return Number(new URL(server.url).port);
  }
  const handler = await bareHandler(variant === 'bare-2q');
  if (variant === 'express') {
    const express = (await import('express' as string)).default as any;
    const app = express();
    app.disable('x-powered-by');
    app.disable('etag');
    app.get('/api/groups/:groupId/threads', (req: IncomingMessage & { params: { groupId: string } }, res: ServerResponse) => {
      handler.list(req, res, req.params.groupId).catch(() => send(res, 500, { error: { code: 'INTERNAL' } }));
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    return (server.address() as AddressInfo).port;
  }
  const server = createServer((req, res) => {
    const match = /^\/api\/groups\/([0-9a-f-]{36})\/threads(?:\?|$)/.exec(req.url ?? '');
    if (req.method !== 'GET' || !match) return send(res, 404, { error: { code: 'NOT_FOUND' } });
    handler.list(req, res, match[1]!).catch(() => send(res, 500, { error: { code: 'INTERNAL' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

function send(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
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

async function bareHandler(twoQueries: boolean) {
  const pool = new pg.Pool({ connectionString: url, max: POOL });
  pool.on('error', () => {});
  // Imported once, as the app does.
  const secret = await crypto.subtle.importKey('raw', new TextEncoder().encode(BENCH_SECRET), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const sessions = new Map<string, number>(); // session id → cached until (ms)
  const first = pageSql(false);
  const next = pageSql(true);

  async function sessionLive(sid: string, sub: string): Promise<boolean> {
    const until = sessions.get(sid);
    if (until !== undefined && until > Date.now()) return true;
    const { rowCount } = await pool.query('select 1 from sessions where id = $1 and user_id = $2 and revoked_at is null', [sid, sub]);
    if (rowCount) sessions.set(sid, Date.now() + 15_000);
    return Boolean(rowCount);
  }

  return {
    async list(req: IncomingMessage, res: ServerResponse, groupId: string) {
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      if (!token) return send(res, 401, { error: { code: 'UNAUTHENTICATED' } });
      let sub: string;
      let sid: string;
      try {
        const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], issuer: 'orbital-relay', audience: 'orbital' });
        sub = payload.sub!;
        sid = payload.sid as string;
      } catch {
        return send(res, 401, { error: { code: 'UNAUTHENTICATED' } });
      }
      const query = new URL(req.url ?? '/', 'http://x').searchParams;
      const limit = Math.min(100, Number(query.get('limit') ?? 20) || 20);
      const cursor = query.get('cursor');
      let before: number | undefined;
      if (cursor) {
        const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown;
        if (!Array.isArray(parsed) || !Number.isInteger(parsed[0])) return send(res, 400, { error: { code: 'VALIDATION_ERROR' } });
        before = parsed[0];
      }
      if (twoQueries) {
        const { rows } = await pool.query(
          `select exists (select 1 from sessions where id = $1 and user_id = $2 and revoked_at is null) as live,
                  exists (select 1 from group_members where group_id = $3 and user_id = $2) as member`,
          [sid, sub, groupId],
        );
        if (!rows[0].live) return send(res, 401, { error: { code: 'UNAUTHENTICATED' } });
        if (!rows[0].member) return send(res, 404, { error: { code: 'NOT_FOUND' } });
      } else if (!(await sessionLive(sid, sub))) {
        return send(res, 401, { error: { code: 'UNAUTHENTICATED' } });
      }
      const sql = before === undefined ? first : next;
      const values = sql.roles.map((r) => (r === 'group' ? groupId : r === 'viewer' ? sub : r === 'before' ? before : limit + 1));
      const { rows } = await pool.query({ text: sql.text, values, rowMode: 'array' });
      if (!rows.length && !twoQueries) {
        const member = await pool.query('select 1 from group_members where group_id = $1 and user_id = $2', [groupId, sub]);
        if (!member.rowCount) return send(res, 404, { error: { code: 'NOT_FOUND' } });
      }
      const items = rows.slice(0, limit).map((r: any[]) => ({
        id: r[0],
        group_id: r[1],
        author_id: r[2],
        author_username: r[3],
        key_epoch: r[4],
        encrypted_title: (r[5] as Buffer).toString('base64'),
        encrypted_body: (r[6] as Buffer).toString('base64'),
        reply_count: r[7],
        media_count: r[8],
        last_activity_at: (r[9] as Date).toISOString(),
        last_activity_seq: Number(r[10]),
        last_read_seq: r[11] === null ? 0 : Number(r[11]),
        unread_count: Number(r[12]),
        created_at: (r[13] as Date).toISOString(),
        seq: Number(r[14]),
      }));
      const last = items[items.length - 1];
      const nextCursor = rows.length > limit && last ? Buffer.from(JSON.stringify([last.seq])).toString('base64url') : null;
      res.setHeader('x-content-type-options', 'nosniff');
      send(res, 200, { items, next_cursor: nextCursor });
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
