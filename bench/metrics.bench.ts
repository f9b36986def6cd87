// What METRICS=on costs on the hottest read, the thread-list page: the same Node app with and
// without the Prometheus registry, each in its own process, rounds interleaved; /metrics scraped
// once a second during the "on" rounds (Prometheus scrapes every 15 s by default: a harsher case).
import { spawn, type ChildProcess } from 'node:child_process';
import { Pool } from 'undici';
import type { Bench, BenchResult } from './harness';
import { round } from './harness';
import { createBenchDatabase } from './threads-fixture';

const BASE = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CONNECTIONS = 50;
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 3_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);

async function serve(mode: 'on' | 'off', databaseUrl: string): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/metrics-server.ts', mode], {
    env: { ...process.env, BENCH_DATABASE_URL: databaseUrl, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const found = /listening (\d+)/.exec(out);
      if (found) resolve(Number(found[1]));
    });
    child.once('exit', (code) => reject(new Error(`metrics ${mode} server exited with ${code}`)));
  });
  return { port, child };
}

/** Completed 200s in `ms` with CONNECTIONS requests always in flight. */
async function hammer(port: number, path: string, token: string, ms: number, scrape: boolean): Promise<{ ok: number; failed: number }> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS });
  const stopAt = performance.now() + ms;
  let ok = 0;
  let failed = 0;
  const scraper = scrape ? setInterval(() => void fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()), 1000) : undefined;
  const worker = async () => {
    while (performance.now() < stopAt) {
      const res = await pool.request({ method: 'GET', path, headers: { authorization: `Bearer ${token}` } });
      await res.body.dump();
      if (res.statusCode === 200) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  clearInterval(scraper);
  await pool.close();
  return { ok, failed };
}

async function run(): Promise<BenchResult> {
  const db = await createBenchDatabase(BASE);
  const servers = { off: await serve('off', db.url), on: await serve('on', db.url) };
  const path = `/api/groups/${db.groupId}/threads?limit=20`;
  const rps = { off: [] as number[], on: [] as number[] };
  let failed = 0;
  try {
    for (const mode of ['off', 'on'] as const) await hammer(servers[mode].port, path, db.token, 2000, false);
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of r % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
        const result = await hammer(servers[mode].port, path, db.token, MEASURE_MS, mode === 'on');
        rps[mode].push(result.ok / (MEASURE_MS / 1000));
        failed += result.failed;
      }
    }
  } finally {
    for (const s of Object.values(servers)) s.child.kill('SIGTERM');
    await db.drop();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ratio = median(rps.on.map((v, i) => v / rps.off[i]!));
  return {
    title: 'Metrics cost: thread-list page with METRICS=on vs off (Node adapter, real Postgres)',
    rows: [
      { METRICS: 'off', 'req/s (median of rounds)': Math.round(median(rps.off)), 'slowest / fastest round': `${Math.round(Math.min(...rps.off))} / ${Math.round(Math.max(...rps.off))}` },
      { METRICS: 'on', 'req/s (median of rounds)': Math.round(median(rps.on)), 'slowest / fastest round': `${Math.round(Math.min(...rps.on))} / ${Math.round(Math.max(...rps.on))}` },
    ],
    notes: [
      `GET /api/groups/:id/threads?limit=20 over 10,000 threads, ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${MEASURE_MS / 1000} s per server; ${failed} failed requests.`,
      `METRICS=on / off, median of per-round ratios: ${round(ratio, 3)}× (cost ${round((1 - ratio) * 100, 1)} %). Budget from the issue: at most 3 % or prom-client goes.`,
      'The "on" server counts each request (counter + histogram), runs prom-client\'s default process metrics and is scraped once a second during its rounds.',
    ].join('\n\n'),
  };
}

export default { name: 'metrics', run } satisfies Bench;
