// Cold start on a warm data dir: from spawning the server (as `npm start` runs it, and the whole
// `npm start` command with npm and its prestart build) to the first 200 from /ready, on PGlite and
// on Postgres; and how long the `orbital` CLI takes to print its help.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bench, BenchResult } from './harness';
import { percentile, round } from './harness';
import { startAsNpmStart } from './npm-start';
import { freshPostgres } from './postgres';

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 7);
const SECRET = 'orbital-bench-secret-0123456789-abcdefghijklmnop';

const stats = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return { median: round(percentile(sorted, 50), 0), min: round(sorted[0]!, 0), max: round(sorted[sorted.length - 1]!, 0) };
};

/** Spawn → /ready for `node dist/server.js` (what npm start runs), RUNS times after one start that warms the data dir. */
async function nodeStarts(env: Record<string, string>): Promise<{ wall: number[]; cpu: number[] }> {
  const warm = await startAsNpmStart(env);
  await warm.stop();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const server = await startAsNpmStart(env);
    wall.push(server.readyMs);
    cpu.push(server.readyCpuMs);
    await server.stop();
  }
  return { wall, cpu };
}

/** The whole `npm start` command (npm, prestart build, then the server) → /ready. */
async function npmStarts(env: Record<string, string>, runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const started = performance.now();
    const child = spawn('npm', ['start', '--silent'], { env: { ...process.env, LOG_LEVEL: 'info', ...env, PORT: String(port) }, stdio: 'ignore', detached: true });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.status === 200, () => false);
      if (ok) break;
      if (child.exitCode !== null || performance.now() - started > 180_000) throw new Error('npm start did not become ready');
      await new Promise((r) => setTimeout(r, 10));
    }
    times.push(performance.now() - started);
    process.kill(-child.pid!, 'SIGTERM'); // npm and the server it started
    await exited;
  }
  return times;
}

function cliTimes(command: string, args: string[], env: Record<string, string> = {}): number[] {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    execFileSync(command, args, { stdio: 'ignore', env: { ...process.env, ...env } });
    times.push(performance.now() - started);
  }
  return times;
}

async function run(): Promise<BenchResult> {
  const rows: Array<Record<string, string | number>> = [];
  const row = (what: string, times: number[], goal: string, cpu?: number[]) =>
    rows.push({ what, ...stats(times), runs: times.length, 'server CPU ms (median)': cpu ? stats(cpu).median : '', goal });
  const serverRow = (what: string, t: { wall: number[]; cpu: number[] }, goal: string) => row(what, t.wall, goal, t.cpu);
  const dataDir = mkdtempSync(join(tmpdir(), 'orbital-bench-start-'));
  const postgres = await freshPostgres();
  try {
    const pglite = { DATA_DIR: dataDir, JWT_SECRET: SECRET };
    serverRow('`node dist/server.js` → /ready, PGlite (warm data dir)', await nodeStarts(pglite), '< 1500 ms');
    row('`npm start` → /ready, PGlite (npm + prestart build + server)', await npmStarts(pglite, 3), 'reported');
    // What `npm run admin -- users list` runs after its build step: a command opening the embedded database.
    row('`node dist/admin.js users list`, PGlite (warm data dir)', cliTimes(process.execPath, ['dist/admin.js', 'users', 'list'], pglite), 'reported');
    if (postgres) {
      const pg = { DATA_DIR: dataDir, JWT_SECRET: SECRET, DATABASE_URL: postgres.url };
      serverRow('`node dist/server.js` → /ready, Postgres (migrated database)', await nodeStarts(pg), '< 1000 ms');
      row('`npm start` → /ready, Postgres (npm + prestart build + server)', await npmStarts(pg, 3), 'reported');
    }
    row('`node bin/orbital.mjs --help`', cliTimes(process.execPath, ['bin/orbital.mjs', '--help']), '< 300 ms');
    row('`npx orbital --help`', cliTimes('npx', ['orbital', '--help']), '< 300 ms');
    row('`npx esbuild --version` (npx by itself)', cliTimes('npx', ['esbuild', '--version']), 'reported');
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    await postgres?.drop();
  }
  const load = (await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return {
    title: 'Start: server to /ready on a warm data dir, and the CLI',
    rows,
    notes:
      `Wall-clock times in ms (median, min, max), and the server's own CPU time until /ready (from /proc: what a quiet machine's wall-clock time approaches). The server rows start \`node dist/server.js\` exactly as \`npm start\` does after its build step (dist/ already built), ` +
      `default log level to a file, and poll /ready every 10 ms; the data dir (PGlite) or database (Postgres) was migrated by an earlier start. ` +
      `The \`npm start\` rows add npm itself and the prestart build step (skipped in ~30 ms when nothing it read changed, as here). \`npx\` resolves a project's own bin by loading the whole local package tree, ` +
      `which by itself takes longer than the CLI: \`node bin/orbital.mjs\` (or \`npm link\` once, then \`orbital\`) is the fast way in. Load average at the end: ${load}.`,
  };
}

export default { name: 'startup', run } satisfies Bench;
