// Thread-list page (20 of 10,000 threads) requests per second on the Node adapter with real
// Postgres, beside a bare node:http + pg handler doing the same work with the same SQL (the
// floor), the same with session and membership read by a separate query, and Express + pg.
// Each server runs in its own process; the load generator (undici, 50 connections) in this one.
// Rounds alternate between the servers so drift on a shared machine hits all of them alike.
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Pool } from 'undici';
import type { Bench, BenchResult } from './harness';
import { percentile, round } from './harness';
import { createBenchDatabase } from './threads-fixture';

const BASE = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CONNECTIONS = 50;
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 2_000);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 2_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 12);

interface Variant {
  name: string;
  label: string;
  roundTrips: string;
}

const VARIANTS: Variant[] = [
  { name: 'app', label: 'Orbital (Hono + drizzle + pg)', roundTrips: '1 (session cached ≤ 15 s)' },
  { name: 'bare', label: 'bare node:http + pg, same SQL (floor)', roundTrips: '1 (session cached ≤ 15 s)' },
  { name: 'bare-2q', label: 'bare node:http + pg, session + membership query, then page', roundTrips: '2' },
  { name: 'express', label: 'Express + pg, same SQL', roundTrips: '1 (session cached ≤ 15 s)' },
];

function hasExpress(): boolean {
  try {
    createRequire(import.meta.url).resolve('express');
    return true;
  } catch {
    return false;
  }
}

const CLOCK_TICKS = Number(execSync('getconf CLK_TCK').toString().trim()) || 100;

/** CPU time (user + system) a process has used, in ms: steadier than req/s on a busy machine. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

async function startServer(variant: string, databaseUrl: string): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/threads-server.ts', variant], {
    env: { ...process.env, BENCH_DATABASE_URL: databaseUrl, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${variant} server exited with ${code}`)));
  });
  return { port, child };
}

/** Keeps CONNECTIONS requests in flight for `ms`; returns completed requests and latencies. */
async function load(port: number, paths: string[], token: string, ms: number) {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS, pipelining: 1 });
  const latencies: number[] = [];
  let errors = 0;
  let i = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        const started = performance.now();
        const res = await pool.request({ method: 'GET', path: paths[i++ % paths.length]!, headers: { authorization: `Bearer ${token}` } });
        await res.body.text();
        if (res.statusCode === 200) latencies.push(performance.now() - started);
        else errors++;
      }
    }),
  );
  await pool.close();
  return { latencies, errors };
}

async function run(): Promise<BenchResult> {
  const db = await createBenchDatabase(BASE);
  const only = process.env.BENCH_VARIANTS?.split(',');
  const variants = VARIANTS.filter((v) => (v.name !== 'express' || hasExpress()) && (!only || only.includes(v.name)));
  const servers = new Map<string, { port: number; child: ChildProcess }>();
  const results = new Map<string, { rps: number[]; latencies: number[]; errors: number; cpu: number }>();
  try {
    for (const v of variants) servers.set(v.name, await startServer(v.name, db.url));
    // The first page and pages deeper in the orbit, as clients scroll.
    const base = `/api/groups/${db.groupId}/threads?limit=20`;
    const paths = [base, ...Array.from({ length: 63 }, (_, k) => `${base}&cursor=${Buffer.from(JSON.stringify([30_000 - 450 * (k + 1)])).toString('base64url')}`)];
    let reference: string | undefined;
    for (const v of variants) {
      // Every server answers the same pages with the same bytes before any timing.
      for (const path of paths.slice(0, 2)) {
        const res = await fetch(`http://127.0.0.1:${servers.get(v.name)!.port}${path}`, { headers: { authorization: `Bearer ${db.token}` } });
        const text = await res.text();
        const body = JSON.parse(text) as { items: unknown[]; next_cursor: string };
        if (res.status !== 200 || body.items.length !== 20 || !body.next_cursor) throw new Error(`${v.name} answered ${res.status}`);
        if (path === paths[1]) {
          reference ??= text;
          if (text !== reference) throw new Error(`${v.name} answers differently from ${variants[0]!.name}`);
        }
      }
      await load(servers.get(v.name)!.port, paths, db.token, WARMUP_MS);
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (const v of variants) {
        const server = servers.get(v.name)!;
        const cpuBefore = cpuMs(server.child.pid!);
        const out = await load(server.port, paths, db.token, MEASURE_MS);
        const entry = results.get(v.name) ?? { rps: [], latencies: [], errors: 0, cpu: 0 };
        entry.cpu += cpuMs(server.child.pid!) - cpuBefore;
        entry.rps.push(out.latencies.length / (MEASURE_MS / 1000));
        entry.latencies.push(...out.latencies);
        entry.errors += out.errors;
        results.set(v.name, entry);
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((s) => new Promise((done) => (s.child.once('exit', done), s.child.kill('SIGTERM')))));
    await db.drop();
  }

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  // Each round's servers ran seconds apart: comparing within rounds cancels the machine's drift.
  const vsFloor = (name: string) => median(results.get(name)!.rps.map((rps, i) => rps / results.get('bare')!.rps[i]!));
  const rows = variants.map((v) => {
    const r = results.get(v.name)!;
    const sorted = [...r.latencies].sort((a, b) => a - b);
    return {
      server: v.label,
      'req/s (median of rounds)': Math.round(median(r.rps)),
      'slowest / fastest round': `${Math.round(Math.min(...r.rps))} / ${Math.round(Math.max(...r.rps))}`,
      'p50 ms': round(percentile(sorted, 50), 1),
      'p99 ms': round(percentile(sorted, 99), 1),
      'server CPU ms per request': round(r.cpu / r.latencies.length, 2),
      'DB round trips per request': v.roundTrips,
      'vs floor (median of per-round ratios)': `${round(vsFloor(v.name), 2)}×`,
      errors: r.errors,
    };
  });
  const express = results.get('express');
  const notes = [
    `GET /api/groups/:id/threads?limit=20 over an orbit of 10,000 threads (2 replies each, read markers on half), ${CONNECTIONS} connections, ` +
      `${ROUNDS} rounds of ${MEASURE_MS / 1000} s per server after a ${WARMUP_MS / 1000} s warm-up, rounds interleaved; Postgres on the same machine, pool of 10 per server.`,
    `Goal: ≥ 0.9× the floor and ahead of Express. Orbital: ${round(vsFloor('app'), 2)}× the floor` +
      (express
        ? `, ${round(vsFloor('app') / vsFloor('express'), 2)}× Express.`
        : '; Express was not measured: it is not installed (`npm i -D express` to include it).'),
    "Requests per second move with whatever else the machine runs; the server process's CPU time per request is the steadier comparison.",
    'Every request verifies the HS256 token with jose, checks the session (cached for 15 s, as the app does) and membership, and reads one keyset page with the author name, read marker and unread count joined in.',
  ];
  return { title: 'Thread list: one page of 20 from 10,000 threads (Node adapter, real Postgres)', rows, notes: notes.join('\n\n') };
}

export default { name: 'threads', run } satisfies Bench;
