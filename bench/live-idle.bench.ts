// Idle live sockets on Postgres, on the server as `npm start` runs it (no embedded database in the
// process): the RSS 10,000 idle sockets add and the server CPU spent per socket accepted (upgrade,
// token and membership check, `ready`). Clients run in their own process (bench/live-clients.ts).
// LIVE_BENCH_IDLE=2000 shortens it while developing.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openNodePostgres } from '../src/adapters/db-node-postgres';
import { migrate } from '../src/db/migrate';
import { signAccessToken } from '../src/domain/tokens';
import { child } from './child';
import { round, type Bench } from './harness';
import { cpuMs, startAsNpmStart } from './npm-start';
import { freshPostgres } from './postgres';

const SOCKETS = Number(process.env.LIVE_BENCH_IDLE ?? 10_000);
const PER_USER = 5; // the per-user socket cap in one orbit
const SECRET = 'orbital-bench-secret-0123456789-abcdefghijklmnop';
const MiB = 1024 * 1024;
/** Sockets opening at once: fewer than the members, so no member opens two at the same moment. */
const CONCURRENCY = Math.min(100, Math.floor(SOCKETS / PER_USER / 2));

const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

/** One orbit whose members hold SOCKETS / PER_USER live sessions; returns their access tokens. */
async function seed(url: string): Promise<{ groupId: string; tokens: string[] }> {
  const handle = openNodePostgres(url, 2);
  await migrate(handle.db);
  const q = (text: string, params: unknown[] = []) => handle.pool.query(text, params);
  const people = Array.from({ length: Math.ceil(SOCKETS / PER_USER) }, (_, i) => ({ user: randomUUID(), session: randomUUID(), name: `idle_${i}` }));
  const groupId = randomUUID();
  const owner = people[0]!.user;
  await q(
    `insert into users (id, username, username_lower, password_hash, public_key) select u, n, n, 'x', '{}' from unnest($1::uuid[], $2::text[]) as t(u, n)`,
    [people.map((p) => p.user), people.map((p) => p.name)],
  );
  await q(`insert into sessions (id, user_id, expires_at) select s, u, now() + interval '1 day' from unnest($1::uuid[], $2::uuid[]) as t(s, u)`, [
    people.map((p) => p.session),
    people.map((p) => p.user),
  ]);
  await q(
    `insert into groups (id, encrypted_name, created_by, owner_id, member_count, max_members, last_seq) values ($1, decode('00', 'hex'), $2, $2, $3, $3, 0)`,
    [groupId, owner, people.length],
  );
  await q(`insert into group_members (group_id, user_id, role) select $1, u, case when u = $2 then 'owner' else 'member' end from unnest($3::uuid[]) as t(u)`, [
    groupId,
    owner,
    people.map((p) => p.user),
  ]);
  await q(`insert into member_keys (group_id, user_id, key_epoch, encrypted_group_key) select $1, u, 1, decode('00', 'hex') from unnest($2::uuid[]) as t(u)`, [
    groupId,
    people.map((p) => p.user),
  ]);
  await q(`insert into group_quotas (group_id) values ($1)`, [groupId]);
  await handle.close();
  const key = new TextEncoder().encode(SECRET);
  const tokens = await Promise.all(people.map((p) => signAccessToken(key, p.user, p.session, new Date())));
  return { groupId, tokens };
}

export default {
  name: 'live-idle',
  async run() {
    const postgres = await freshPostgres();
    if (!postgres) throw new Error('live-idle needs Postgres (BENCH_DATABASE_URL or 127.0.0.1:5432)');
    const dataDir = mkdtempSync(join(tmpdir(), 'orbital-bench-live-'));
    try {
      const { groupId, tokens } = await seed(postgres.url);
      const server = await startAsNpmStart({ DATABASE_URL: postgres.url, JWT_SECRET: SECRET, RATE_LIMIT: 'off', DATA_DIR: dataDir });
      const pid = server.child.pid!;
      if (process.env.LIVE_BENCH_LOG) console.log(server.logFile);
      try {
        const clients = await child('./live-clients.ts');
        // One socket through the whole path first, so lazy setup is not counted per socket.
        const url = `${server.url.replace('http', 'ws')}/api/groups/${groupId}/live`;
        await clients.ask({ cmd: 'open', url, headers: [{ authorization: `Bearer ${tokens[0]}` }], waitFor: 'ready', concurrency: 1 });
        await new Promise((r) => setTimeout(r, 2000));
        const before = { rss: rss(pid), cpu: cpuMs(pid) };
        const started = performance.now();
        // Socket i belongs to member i mod members: one member's sockets never open at the same moment
        // (concurrent opens by one user can fail on main as of this writing: see the report to the lead).
        const headers = Array.from({ length: SOCKETS - 1 }, (_, i) => ({ authorization: `Bearer ${tokens[(i + 1) % tokens.length]}` }));
        const opened = await clients.ask<{ errors: number }>({ cmd: 'open', url, headers, waitFor: 'ready', concurrency: CONCURRENCY });
        const openSeconds = (performance.now() - started) / 1000;
        const acceptCpu = cpuMs(pid) - before.cpu;
        await new Promise((r) => setTimeout(r, 5000)); // idle: heartbeats and timers only
        if (process.env.LIVE_BENCH_SNAPSHOT) {
          // A heap snapshot of the server holding its sockets (BENCH_NODE_ARGS=--heapsnapshot-signal=SIGUSR2).
          process.kill(pid, 'SIGUSR2');
          await new Promise((r) => setTimeout(r, Number(process.env.LIVE_BENCH_SNAPSHOT)));
        }
        const after = { rss: rss(pid), cpu: cpuMs(pid) };
        const stats = await clients.ask<{ open: number; unexpectedCloses: number }>({ cmd: 'stats' });
        await clients.ask({ cmd: 'close' });
        const added = (after.rss - before.rss) / MiB;
        const perAccept = acceptCpu / (SOCKETS - 1);
        return {
          title: `Idle live sockets on Postgres (\`npm start\`)`,
          rows: [
            { measure: 'sockets open after 5 s idle', value: stats.open, goal: String(SOCKETS), note: `${opened.errors} failed to open, ${stats.unexpectedCloses} dropped` },
            { measure: 'server RSS added (MiB)', value: round(added, 0), goal: '< 120', note: `${round(before.rss / MiB, 0)} → ${round(after.rss / MiB, 0)} MiB; ${round((added * MiB) / SOCKETS / 1024, 1)} KiB per socket` },
            { measure: 'server CPU per socket accepted (ms)', value: round(perAccept, 2), goal: '< 1', note: `${round(acceptCpu / 1000, 1)} s of server CPU to open ${SOCKETS - 1} sockets in ${round(openSeconds, 1)} s (${CONCURRENCY} opening at a time)` },
            { measure: 'server CPU while idle (ms per s)', value: round((after.cpu - before.cpu - acceptCpu) / 5, 0), goal: '', note: 'over the 5 s after the last socket opened' },
          ],
          notes:
            `The server runs as \`npm start\` runs it (\`node dist/server.js\`, default log level, output to a file) on a fresh Postgres database: ${SOCKETS / PER_USER} members of one orbit, ` +
            `${PER_USER} sockets each (the per-user cap), every socket authenticated with its member's bearer token and answered \`ready\`. RSS and CPU from /proc/<pid>. ` +
            `Clients share the 2-core machine with the server and Postgres. Load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}.`,
        };
      } finally {
        await server.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      await postgres.drop();
    }
  },
} satisfies Bench;
