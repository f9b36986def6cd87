// Live sockets on the server as `npm start` runs it, on Postgres: one event committed by another
// process to 1,000 sockets (beside a bare `ws` broadcast loop with the same client harness), and a
// replay of 1,000 missed events. The driver (bench/live-server.ts) and the clients
// (bench/live-clients.ts) run in processes of their own. Idle sockets: bench/live-idle.bench.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { child, type Child } from './child';
import { percentile, round, type Bench } from './harness';
import { startAsNpmStart, type StartedServer } from './npm-start';
import { freshPostgres } from './postgres';

const ROUNDS = 30;
const WARMUP = 5;
const FANOUT = 1000;
const PER_USER = 5;

const headersFor = (tokens: string[], n: number) => Array.from({ length: n }, (_, i) => ({ authorization: `Bearer ${tokens[Math.floor(i / PER_USER)]}` }));
const liveUrl = (base: string, groupId: string, query = '') => `${base.replace('http', 'ws')}/api/groups/${groupId}/live${query}`;

function summary(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 50), 2), p99: round(percentile(sorted, 99), 2), max: round(sorted[sorted.length - 1]!, 2) };
}

async function fanout(server: StartedServer, driver: Child) {
  const { groupId, tokens } = await driver.ask<{ groupId: string; tokens: string[] }>({ cmd: 'seed', members: FANOUT / PER_USER - 1 });
  const clients = await child('./live-clients.ts');
  const orbital = await clients.ask({ cmd: 'open', url: liveUrl(server.url, groupId), headers: headersFor(tokens, FANOUT), waitFor: 'ready', concurrency: 20 });
  const bare = await clients.ask({ cmd: 'open', url: driver.started.bareUrl, headers: Array.from({ length: FANOUT }, () => ({})), waitFor: 'open', concurrency: 50 });
  if (orbital.errors || bare.errors || bare.opened !== 2 * FANOUT) throw new Error(`sockets failed to open: ${JSON.stringify({ orbital, bare })}`);

  const total = WARMUP + ROUNDS;
  const kinds = {
    bare: { samples: [] as number[], send: (r: number) => driver.ask({ cmd: 'bare-send', round: r }) },
    // Committed by another process: the server hears of it by NOTIFY. (An event committed ahead of
    // its round cannot be timed this way: the server's poll of last_seq finds it first.)
    write: { samples: [] as number[], send: (r: number) => driver.ask({ cmd: 'write', groupId, round: r }) },
  };
  let lost = 0;
  const measure = async (kind: keyof typeof kinds, roundId: number, counted: boolean) => {
    const { t0 } = await kinds[kind].send(roundId);
    const { arrivals } = await clients.ask<{ arrivals: number[] }>({ cmd: 'arrivals', round: roundId, expect: FANOUT, timeoutMs: 10_000 });
    lost += FANOUT - arrivals.length;
    if (counted) kinds[kind].samples.push(...arrivals.map((a) => a - t0));
    await new Promise((res) => setTimeout(res, 20));
  };
  // Interleaved, so drift on a shared machine hits both alike.
  for (let r = 0; r < total; r++) {
    await measure('bare', 5000 + r, r >= WARMUP);
    await measure('write', 9000 + r, r >= WARMUP);
  }
  const closed = await clients.ask({ cmd: 'close' });
  return { kinds, lost, closed };
}

async function replay(server: StartedServer, driver: Child) {
  const { groupId, tokens } = await driver.ask<{ groupId: string; tokens: string[] }>({ cmd: 'seed', members: 0 });
  await driver.ask({ cmd: 'events', groupId, count: 1000 });
  const clients = await child('./live-clients.ts');
  const { runs } = await clients.ask<{ runs: Array<{ ms: number; events: number }> }>({
    cmd: 'replay',
    url: liveUrl(server.url, groupId, '?after_seq=0'),
    headers: { authorization: `Bearer ${tokens[0]}` },
    runs: 12,
  });
  await clients.ask({ cmd: 'close' });
  if (runs.some((r) => r.events !== 1000)) throw new Error(`replay sent ${runs.map((r) => r.events)} events`);
  return runs.slice(2).map((r) => r.ms); // the first two warm up
}


export default {
  name: 'live',
  async run() {
    const postgres = await freshPostgres();
    if (!postgres) throw new Error('the live bench needs Postgres (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres)');
    const dataDir = mkdtempSync(join(tmpdir(), 'orbital-live-bench-'));
    const env = { DATABASE_URL: postgres.url, DATA_DIR: dataDir, JWT_SECRET: 'orbital-bench-secret-0123456789-abcdefghijklmnop', RATE_LIMIT: 'off', MAX_MEMBERS: '100000' };
    const server = await startAsNpmStart(env);
    const driver = await child('./live-server.ts', { BENCH_SERVER_ENV: JSON.stringify(env) });
    let fan: Awaited<ReturnType<typeof fanout>>;
    let replays: number[];
    try {
      fan = await fanout(server, driver);
      replays = await replay(server, driver);
    } finally {
      await driver.ask({ cmd: 'stop' }).catch(() => undefined);
      await server.stop();
      await postgres.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }

    const bare = summary(fan.kinds.bare.samples);
    const fromWrite = summary(fan.kinds.write.samples);
    const replaySorted = [...replays].sort((a, b) => a - b);
    const ratio = round(fromWrite.p99 / bare.p99, 2);
    const rows = [
      { measure: `bare ws loop → ${FANOUT} sockets (ms)`, p50: bare.p50, p99: bare.p99, max: bare.max, note: `${ROUNDS} rounds` },
      {
        measure: `\`npm start\` → ${FANOUT} sockets, an event written by another process (ms)`,
        p50: fromWrite.p50,
        p99: fromWrite.p99,
        max: fromWrite.max,
        note: `p99 ${ratio}× bare (goal ≤ 1.5×), including the writer's Postgres transaction and NOTIFY`,
      },
      {
        measure: `replay of 1,000 events to ready (ms)`,
        p50: round(percentile(replaySorted, 50), 1),
        p99: round(percentile(replaySorted, 99), 1),
        max: round(replaySorted[replaySorted.length - 1]!, 1),
        note: `${replays.length} runs (goal < 200 ms)`,
      },
    ];
    return {
      title: 'Live sockets (Node, `npm start`, Postgres)',
      rows,
      notes:
        `The server runs as \`npm start\` runs it (built dist/, default log level to a file) on a fresh Postgres database; a driver process commits the events ` +
        `as another process of the relay would, so each reaches the server by Postgres NOTIFY; clients in a third process. Latency = client arrival − driver send time (same clock). ` +
        `The bare loop (in the driver) serializes once and sends to every socket; the server adds the notification, ordering, per-recipient views and backpressure. ` +
        `Events lost in the fan-out rounds: ${fan.lost}. Sockets per user per orbit are capped at 5, so ${FANOUT} sockets are ${FANOUT / PER_USER} members.`,
    };
  },
} satisfies Bench;
