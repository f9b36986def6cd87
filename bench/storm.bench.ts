// The reconnect storm (`npm run bench -- storm`): 10,000 live sockets over 1,000 orbits on the
// server as `npm start` runs it (Postgres), then a restart of that server. Every socket comes back
// as the desktop client does (random delay, `after_seq` = the last seq it saw) while a second node
// on the same database keeps taking writes, so events land before, during and after the restart.
// Measured: the time until every socket is `ready` again, the restarted server's CPU until then,
// and whether every socket saw every event of its orbit exactly once, in order.
// STORM_SOCKETS and STORM_ORBITS shrink it while developing.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { child } from './child';
import { round, type Bench, type BenchResult } from './harness';
import { freshPostgres } from './postgres';
import { seed, startServer, writeLoad } from './scale-fixture';

const SOCKETS = Number(process.env.STORM_SOCKETS ?? 10_000);
const ORBITS = Number(process.env.STORM_ORBITS ?? 1_000);
const CLIENT_PROCESSES = 2;
const WRITES_PER_S = 50;
/** The write load spans the restart: it starts this long before it. */
const WRITES_BEFORE_MS = 3_000;
const WRITE_SECONDS = 20;
/** As the desktop client: the first try after up to 1 s, backing off to 5 s while refused. */
const RECONNECT = { firstDelayMs: 1_000, maxDelayMs: 5_000 };

async function lastSeqs(url: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ id: string; last: number }>('select id, last_seq::int as last from groups');
    return Object.fromEntries(rows.map((r) => [r.id, r.last]));
  } finally {
    await client.end();
  }
}

async function run(): Promise<BenchResult> {
  const database = await freshPostgres();
  if (!database) throw new Error('bench storm needs Postgres (BENCH_DATABASE_URL, default the local one)');
  const dirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'orbital-storm-')));
  const seeded = await seed(database.url, ORBITS);
  let server = await startServer(1, database.url, dirs[0]);
  // The other node: writes reach the database through it while the first one restarts.
  const writer = await startServer(1, database.url, dirs[1]);
  const clients = await Promise.all(Array.from({ length: CLIENT_PROCESSES }, () => child('./scale-clients.ts')));
  try {
    const perOrbit = SOCKETS / ORBITS;
    const sockets = seeded.orbits.flatMap((o) =>
      Array.from({ length: perOrbit }, (_, k) => ({ url: `${server.url.replace('http', 'ws')}/api/groups/${o.id}/live?after_seq=0`, token: k % 2 ? o.member : o.owner, groupId: o.id })),
    );
    const share = Math.ceil(sockets.length / clients.length);
    const opened = await Promise.all(clients.map((c, i) => c.ask({ cmd: 'open', sockets: sockets.slice(i * share, (i + 1) * share), concurrency: 50, reconnect: RECONNECT })));
    const openErrors = opened.reduce((a, o) => a + o.errors, 0);

    const writes = writeLoad(writer.url, seeded.orbits, WRITES_PER_S, WRITE_SECONDS);
    await new Promise((r) => setTimeout(r, WRITES_BEFORE_MS));
    const stopAt = Date.now();
    await server.stop(); // SIGTERM: every socket is closed with 1001 and comes back on its own
    const spawnAt = Date.now();
    server = await startServer(1, database.url, dirs[0], new URL(server.url).port);
    const back = await Promise.all(clients.map((c) => c.ask({ cmd: 'ready', timeoutMs: 120_000 })));
    const serverCpu = server.cpuMs();
    const allReadyAt = Math.max(...back.map((b) => b.lastReadyAt as number));
    const readyCount = back.reduce((a, b) => a + b.ready, 0);
    const refusals: Record<string, number> = {};
    for (const b of back) for (const [why, n] of Object.entries(b.failures as Record<string, number>)) refusals[why] = (refusals[why] ?? 0) + n;

    const written = await writes;
    const lastSeq = await lastSeqs(database.url);
    const checks = await Promise.all(clients.map((c) => c.ask({ cmd: 'check', lastSeq, timeoutMs: 60_000 })));
    const sum = (k: string) => checks.reduce((a, c) => a + (c[k] as number), 0);
    const lost = sum('lost');
    const gaps = sum('gaps');
    const duplicates = sum('duplicates');
    const seconds = (allReadyAt - spawnAt) / 1000;
    return {
      title: 'Reconnect storm: 10,000 sockets over 1,000 orbits come back after a restart (`npm start`, Postgres)',
      rows: [
        { measure: 'sockets ready again', value: `${readyCount} of ${SOCKETS}`, goal: `${SOCKETS}`, note: openErrors ? `${openErrors} failed to open at first` : 'all opened at first' },
        { measure: 'all ready, from the new process spawned (s)', value: round(seconds, 1), goal: '< 20', note: `${round((allReadyAt - stopAt) / 1000, 1)} s from SIGTERM to the old process` },
        { measure: 'restarted server CPU until all ready (ms per socket)', value: round(serverCpu / SOCKETS, 2), goal: '', note: `${round(serverCpu / 1000, 1)} s of CPU, start-up included` },
        { measure: 'lost / duplicate / out-of-order events', value: `${lost} / ${duplicates} / ${gaps}`, goal: '0 / 0 / 0', note: `${written.ok} writes (${written.failed} failed) through the other node, ${WRITES_BEFORE_MS / 1000} s before the restart until ${WRITE_SECONDS} s` },
        { measure: 'reconnect attempts', value: sum('reconnects'), goal: '', note: Object.entries(refusals).map(([why, n]) => `${n}× ${why}`).join(', ') || 'none refused' },
      ],
      notes:
        `Both nodes run as \`npm start\` runs the server (built dist/, default log level, log to a file, WORKERS=1) on one local Postgres 15. Sockets live in ${CLIENT_PROCESSES} client processes, ${SOCKETS / ORBITS} an orbit (two members, five each); ` +
        `a socket the server closes reconnects after a random 0–${RECONNECT.firstDelayMs / 1000} s with after_seq = the last seq it saw, doubling the delay up to ${RECONNECT.maxDelayMs / 1000} s while refused (connection refused while the process is down). ` +
        `Everything shares this 2-core machine; load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}. ` +
        `Goals: all ready in under 20 s — ${seconds < 20 && readyCount === SOCKETS ? 'met' : 'not met'}; 0 gaps and 0 duplicates — ${lost + gaps + duplicates === 0 ? 'met' : 'NOT met'}.`,
    };
  } finally {
    await Promise.all(clients.map((c) => c.ask({ cmd: 'close' }).catch(() => undefined)));
    await server.stop();
    await writer.stop();
    await seeded.close();
    await database.drop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

export default { name: 'storm', run } satisfies Bench;
