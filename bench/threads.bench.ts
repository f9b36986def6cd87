// The API's hot paths on the server as users run it (`npm start`: built dist/, default log level,
// log to a file, real Postgres), beside a bare node:http + pg + jose server running the same SQL
// (the floor) and Express running the floor's handlers. Three requests: a thread-list page (20 of
// 10,000 threads), a thread create and a reply create. Each server runs in its own process, the
// load generator (undici, 50 connections) in this one; rounds alternate between the servers so
// drift on a shared machine hits all of them alike. Server CPU comes from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import pg from 'pg';
import { Pool } from 'undici';
import type { Bench, BenchResult } from './harness';
import { percentile, round } from './harness';
import { cpuMs, startAsNpmStart, startArgs } from './npm-start';
import { BENCH_SECRET, createBenchDatabase } from './threads-fixture';

const BASE = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CONNECTIONS = 50;
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 2_000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 2_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
/** Another checkout of the project (with node_modules) to run as the `before` variant: before/after figures for a cut. */
const BEFORE_DIR = process.env.BENCH_BEFORE_DIR;
/** A folder to write each server's `--cpu-prof` profile to, one subfolder per variant (profiling only). */
const CPU_PROF = process.env.BENCH_CPU_PROF;

interface Variant {
  name: string;
  label: string;
}

const VARIANTS: Variant[] = [
  { name: 'app', label: 'Orbital, `npm start`' },
  { name: 'app-silent', label: 'Orbital, `npm start` with LOG_LEVEL=silent (no access log)' },
  { name: 'app-semi2', label: 'Orbital, `npm start` + --max-semi-space-size=2' },
  { name: 'before', label: `Orbital, \`npm start\`, before the cut (${process.env.BENCH_BEFORE_LABEL ?? 'BENCH_BEFORE_DIR'})` },
  { name: 'bare', label: 'bare node:http + pg + jose, same SQL (floor)' },
  { name: 'express', label: 'Express + pg, same SQL' },
];
const DEFAULT_VARIANTS = ['app', 'bare', 'express'];

interface Request {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
}

interface Scenario {
  name: string;
  label: string;
  status: number;
  request(i: number): Request;
}

interface Running {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** The baselines, bundled like the app so neither runs through a TypeScript loader. */
async function buildBaselines(): Promise<string> {
  const dir = join('node_modules', '.cache', 'orbital-bench');
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, 'threads-server.mjs');
  await build({ entryPoints: ['bench/threads-server.ts'], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile, logLevel: 'warning' });
  return outfile;
}

async function startBaseline(script: string, variant: string, databaseUrl: string): Promise<Running> {
  const profile = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}/${variant}`] : [];
  const child = spawn(process.execPath, [...profile, script, variant], { env: { ...process.env, BENCH_DATABASE_URL: databaseUrl }, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exited.then(() => reject(new Error(`${variant} server exited`)));
  });
  return { url: `http://127.0.0.1:${port}`, child, stop: async () => (child.kill('SIGTERM'), await exited) };
}

async function startVariant(name: string, databaseUrl: string, baselines: string): Promise<Running> {
  if (name === 'bare' || name === 'express') return startBaseline(baselines, name, databaseUrl);
  const nodeArgs = [...(name === 'app-semi2' ? ['--max-semi-space-size=2'] : []), ...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}/${name}`] : [])];
  const dataDir = mkdtempSync(join(tmpdir(), 'orbital-bench-data-'));
  const cwd = name === 'before' ? BEFORE_DIR : undefined;
  if (name === 'before' && !cwd) throw new Error('the before variant needs BENCH_BEFORE_DIR');
  const env = { DATABASE_URL: databaseUrl, JWT_SECRET: BENCH_SECRET, RATE_LIMIT: 'off', DATA_DIR: dataDir, ...(name === 'app-silent' ? { LOG_LEVEL: 'silent' } : {}) };
  return startAsNpmStart(env, { nodeArgs, cwd });
}

/** Keeps CONNECTIONS requests in flight for `ms`; returns the latencies of answers with the expected status. */
async function load(url: string, scenario: Scenario, token: string, ms: number) {
  const pool = new Pool(url, { connections: CONNECTIONS, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  let i = 0;
  const end = performance.now() + ms;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        const started = performance.now();
        const res = await pool.request({ ...scenario.request(i++), headers });
        await res.body.text();
        if (res.statusCode === scenario.status) latencies.push(performance.now() - started);
        else errors++;
      }
    }),
  );
  await pool.close();
  return { latencies, errors };
}

function scenarios(groupId: string, threadIds: string[]): Scenario[] {
  const base = `/api/groups/${groupId}/threads?limit=20`;
  // The first page and pages deeper in the orbit, as clients scroll.
  const pages = [base, ...Array.from({ length: 63 }, (_, k) => `${base}&cursor=${Buffer.from(JSON.stringify([30_000 - 450 * (k + 1)])).toString('base64url')}`)];
  // Ciphertext sizes like short real posts (as base64 on the wire).
  const title = Buffer.alloc(48, 7).toString('base64');
  const text = Buffer.alloc(300, 9).toString('base64');
  const replyText = Buffer.alloc(128, 5).toString('base64');
  return [
    { name: 'list', label: 'thread list (GET a page of 20)', status: 200, request: (i) => ({ method: 'GET', path: pages[i % pages.length]! }) },
    {
      name: 'thread',
      label: 'thread create (POST /api/threads)',
      status: 201,
      request: () => ({ method: 'POST', path: '/api/threads', body: JSON.stringify({ group_id: groupId, key_epoch: 1, encrypted_title: title, encrypted_body: text }) }),
    },
    {
      name: 'reply',
      label: 'reply create (POST /api/threads/:id/replies)',
      status: 201,
      request: (i) => ({ method: 'POST', path: `/api/threads/${threadIds[i % threadIds.length]}/replies`, body: JSON.stringify({ key_epoch: 1, encrypted_body: replyText }) }),
    },
  ];
}

/** Every server gives the same answer (list: the same bytes; creates: the same fields) before any timing. */
async function checkAnswers(servers: Map<string, Running>, all: Scenario[], token: string) {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  for (const scenario of all) {
    let reference: string | undefined;
    for (const [name, server] of servers) {
      const req = scenario.request(1);
      const res = await fetch(server.url + req.path, { method: req.method, headers, body: req.body });
      const text = await res.text();
      if (res.status !== scenario.status) throw new Error(`${name} answered ${scenario.name} with ${res.status}: ${text}`);
      const shape = scenario.name === 'list' ? text : Object.keys(JSON.parse(text) as object).join(',');
      reference ??= shape;
      if (shape !== reference) throw new Error(`${name} answers ${scenario.name} differently:\n${shape}\n${reference}`);
    }
  }
}

async function run(): Promise<BenchResult> {
  const db = await createBenchDatabase(BASE);
  const wanted = process.env.BENCH_VARIANTS?.split(',') ?? DEFAULT_VARIANTS;
  const variants = VARIANTS.filter((v) => wanted.includes(v.name));
  const onlyScenarios = process.env.BENCH_SCENARIOS?.split(',');
  const servers = new Map<string, Running>();
  type Totals = { rps: number[]; latencies: number[]; errors: number; cpu: number; cpuRounds: number[] };
  const results = new Map<string, Totals>(); // `${scenario}/${variant}`
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const { rows } = await client.query<{ id: string }>('select id from threads order by seq desc limit 1000');
  await client.end();
  const all = scenarios(db.groupId, rows.map((r) => r.id)).filter((s) => !onlyScenarios || onlyScenarios.includes(s.name));
  try {
    const baselines = await buildBaselines();
    for (const v of variants) servers.set(v.name, await startVariant(v.name, db.url, baselines));
    await checkAnswers(servers, all, db.token);
    for (const scenario of all) for (const v of variants) await load(servers.get(v.name)!.url, scenario, db.token, WARMUP_MS);
    for (let r = 0; r < ROUNDS; r++) {
      for (const scenario of all) {
        for (const v of variants) {
          const server = servers.get(v.name)!;
          const cpuBefore = cpuMs(server.child.pid!);
          const out = await load(server.url, scenario, db.token, MEASURE_MS);
          const cpu = cpuMs(server.child.pid!) - cpuBefore;
          const key = `${scenario.name}/${v.name}`;
          const entry = results.get(key) ?? { rps: [], latencies: [], errors: 0, cpu: 0, cpuRounds: [] };
          entry.cpu += cpu;
          entry.cpuRounds.push(cpu / Math.max(1, out.latencies.length));
          entry.rps.push(out.latencies.length / (MEASURE_MS / 1000));
          entry.latencies.push(...out.latencies);
          entry.errors += out.errors;
          results.set(key, entry);
        }
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((s) => s.stop()));
    await db.drop();
  }

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  // Each round's servers ran seconds apart: comparing within rounds cancels the machine's drift.
  const perRound = (scenario: string, name: string, pick: (t: Totals) => number[]) => {
    const floor = results.get(`${scenario}/bare`);
    const mine = results.get(`${scenario}/${name}`)!;
    return floor ? median(pick(mine).map((x, i) => x / pick(floor)[i]!)) : NaN;
  };
  const rows2 = all.flatMap((scenario) =>
    variants.map((v) => {
      const r = results.get(`${scenario.name}/${v.name}`)!;
      const sorted = [...r.latencies].sort((a, b) => a - b);
      return {
        request: scenario.label,
        server: v.label,
        'req/s (median of rounds)': Math.round(median(r.rps)),
        'p50 ms': round(percentile(sorted, 50), 1),
        'p99 ms': round(percentile(sorted, 99), 1),
        'server CPU ms per request': round(r.cpu / Math.max(1, r.latencies.length), 3),
        'CPU vs floor': `${round(perRound(scenario.name, v.name, (t) => t.cpuRounds), 2)}×`,
        'req/s vs floor': `${round(perRound(scenario.name, v.name, (t) => t.rps), 2)}×`,
        errors: r.errors,
      };
    }),
  );
  const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const notes = [
    `Orbital runs as \`npm start\` runs it: \`node ${startArgs().join(' ')}\` after the same build step, default log level (info: one JSON line per request) to a file, ` +
      `RATE_LIMIT=off, on a fresh Postgres database (127.0.0.1:5432) holding one orbit of 10,000 threads (2 replies each, read markers on half)` +
      (CPU_PROF ? '; this run was profiled (--cpu-prof), which inflates its CPU.' : '.'),
    `${CONNECTIONS} connections, ${ROUNDS} rounds of ${MEASURE_MS / 1000} s per server and request after a ${WARMUP_MS / 1000} s warm-up, rounds interleaved; pool of 10 connections per server. ` +
      'Creates write to the one orbit, so they queue on its counter row, in every server alike. "vs floor" figures are medians of per-round ratios.',
    'Goals: thread list CPU per request ≤ 1.1× the floor and below Express, req/s ≥ 0.9× the floor, p99 ≤ 1.2× the floor; thread and reply create CPU per request ≤ 1.3× the floor.',
    `The floor: the same statements as the app (the page query built by the app's own code; the create statements captured from the app's pg client), each named as the app names its own (parsed and planned once per connection), jose for the token, the session cached 15 s as the app does, the NOTIFY the app sends after each write. ` +
      `Load average at the end: ${load1} on a machine other work shares; server CPU per request (all threads, from /proc/<pid>/stat) is the steadier figure.`,
  ];
  return { title: 'API hot paths: `npm start` vs the floor and Express (Node, real Postgres)', rows: rows2, notes: notes.join('\n\n') };
}

export default { name: 'threads', run } satisfies Bench;
