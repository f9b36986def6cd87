// Idle live sockets on Postgres, on the server as `npm start` runs it (no embedded database in the
// process): the RSS 10,000 idle sockets add and the server CPU spent per socket accepted (upgrade,
// token and membership check, `ready`). Clients run in their own process (bench/live-clients.ts).
// LIVE_BENCH_IDLE=2000 shortens it while developing.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { child } from './child';
import { seedOrbit } from './live-seed';
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

export default {
  name: 'live-idle',
  async run() {
    const postgres = await freshPostgres();
    if (!postgres) throw new Error('live-idle needs Postgres (BENCH_DATABASE_URL or 127.0.0.1:5432)');
    const dataDir = mkdtempSync(join(tmpdir(), 'orbital-bench-live-'));
    try {
      const { groupId, tokens } = await seedOrbit(postgres.url, Math.ceil(SOCKETS / PER_USER), new TextEncoder().encode(SECRET));
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
