// What METRICS=on costs on the hottest read, the thread-list page: the same Node app with and
// without the Prometheus registry, each in its own process, rounds interleaved; /metrics scraped
// once a second during the "on" rounds (Prometheus scrapes every 15 s by default: a harsher case).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import type { Bench, BenchResult } from './harness';
import { round } from './harness';
import { createBenchDatabase } from './threads-fixture';

const BASE = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CONNECTIONS = 50;
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 3_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);

/** The server's user + system CPU so far, in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
function ticks(pid: number): number {
  const [utime, stime] = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ').slice(11, 13).map(Number);
  return utime! + stime!;
}

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
  const cpu = { off: { ticks: 0, requests: 0 }, on: { ticks: 0, requests: 0 } };
  let failed = 0;
  try {
    for (const mode of ['off', 'on'] as const) await hammer(servers[mode].port, path, db.token, 2000, false);
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of r % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
        const before = ticks(servers[mode].child.pid!);
        const result = await hammer(servers[mode].port, path, db.token, MEASURE_MS, mode === 'on');
        cpu[mode].ticks += ticks(servers[mode].child.pid!) - before;
        cpu[mode].requests += result.ok;
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
  // Clock ticks are 10 ms each (CLK_TCK 100 on Linux).
  const cpuPerRequest = (mode: 'on' | 'off') => (cpu[mode].ticks * 10) / Math.max(1, cpu[mode].requests);
  const cpuCost = cpuPerRequest('on') / cpuPerRequest('off') - 1;
  return {
    title: 'Metrics cost: thread-list page with METRICS=on vs off (Node adapter, real Postgres)',
    rows: [
      { METRICS: 'off', 'req/s (median of rounds)': Math.round(median(rps.off)), 'slowest / fastest round': `${Math.round(Math.min(...rps.off))} / ${Math.round(Math.max(...rps.off))}`, 'server CPU ms per request': round(cpuPerRequest('off'), 3) },
      { METRICS: 'on', 'req/s (median of rounds)': Math.round(median(rps.on)), 'slowest / fastest round': `${Math.round(Math.min(...rps.on))} / ${Math.round(Math.max(...rps.on))}`, 'server CPU ms per request': round(cpuPerRequest('on'), 3) },
    ],
    notes: [
      `GET /api/groups/:id/threads?limit=20 over 10,000 threads, ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${MEASURE_MS / 1000} s per server; ${failed} failed requests.`,
      `Throughput, METRICS=on / off, median of per-round ratios: ${round(ratio, 3)}×. Server CPU per request: ${round(cpuCost * 100, 1)} % more with METRICS=on (the steadier figure on a shared machine). Budget from the issue: at most 3 % or prom-client goes.`,
      'The "on" server counts each request (counter + histogram), runs prom-client\'s default process metrics and is scraped once a second during its rounds.',
    ].join('\n\n'),
  };
}

export default { name: 'metrics', run } satisfies Bench;
