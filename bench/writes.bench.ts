// Relay-message writes per second through the write gate (membership and key checked under the
// orbit row's lock, with the seq, in one statement): 50 connections posting into one orbit (every
// write queues on that orbit's row) and into 50 orbits (no contention). The server is the Node
// entry on real Postgres, in its own process; BENCH_SERVER_DIR runs another checkout's server
// (e.g. an older commit) against the same load, for a before/after comparison.
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { Pool } from 'undici';
import type { Bench, BenchResult } from './harness';
import { percentile, round } from './harness';

const BASE = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SERVER_DIR = resolve(process.env.BENCH_SERVER_DIR ?? '.');
const CONNECTIONS = 50;
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 3_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

/** A port the OS picks (bound and released here, then given to the server). */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((done) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => done(port));
    });
  });
}

async function startServer(databaseUrl: string, dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/runtime/node.ts'], {
    cwd: SERVER_DIR,
    // warn: no access log line per request in the measurement.
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: databaseUrl, DATA_DIR: dataDir, RATE_LIMIT: 'off', LOG_LEVEL: 'warn', JWT_SECRET: randomBytes(32).toString('hex') },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (const started = Date.now(); ; ) {
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    if (await fetch(`${url}/health`).then((r) => r.status < 500, () => false)) return { url, child };
    if (Date.now() - started > 60_000) throw new Error('the server did not start');
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function api(url: string, method: string, path: string, token: string | null, body: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
  return res.json() as Promise<any>;
}

async function ownerWithOrbit(url: string, n: number) {
  const publicKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const user = await api(url, 'POST', '/api/auth/register', null, { username: `w${n}_${randomBytes(3).toString('hex')}`, password: 'correct horse battery staple', public_key: publicKey });
  const orbit = await api(url, 'POST', '/api/groups', user.access_token, { encrypted_name: randomBytes(32).toString('base64'), encrypted_group_key: randomBytes(64).toString('base64') });
  return { token: user.access_token as string, groupId: orbit.group.id as string };
}

/** CONNECTIONS writers for `ms`, writer k posting as senders[k % senders.length]. */
async function load(url: string, senders: Array<{ token: string; groupId: string }>, ms: number) {
  const pool = new Pool(url, { connections: CONNECTIONS, pipelining: 1 });
  const body = JSON.stringify({ key_epoch: 1, envelope: randomBytes(256).toString('base64') });
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, k) => {
      const s = senders[k % senders.length]!;
      while (performance.now() < end) {
        const started = performance.now();
        const res = await pool.request({ method: 'POST', path: `/api/groups/${s.groupId}/messages`, headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' }, body });
        await res.body.text();
        if (res.statusCode === 201) latencies.push(performance.now() - started);
        else errors++;
      }
    }),
  );
  await pool.close();
  return { latencies, errors };
}

async function run(): Promise<BenchResult> {
  const name = `bench_writes_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: BASE });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(BASE);
  url.pathname = `/${name}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-writes-'));
  const server = await startServer(url.toString(), dataDir);
  const rows: BenchResult['rows'] = [];
  try {
    const owners = [];
    for (let n = 0; n < CONNECTIONS; n++) owners.push(await ownerWithOrbit(server.url, n));
    const shapes = [
      { label: `one orbit, ${CONNECTIONS} connections (every write waits for the orbit's row)`, senders: owners.slice(0, 1) },
      { label: `${CONNECTIONS} orbits, one connection each`, senders: owners },
    ];
    for (const shape of shapes) await load(server.url, shape.senders, 1_000);
    const results = shapes.map(() => ({ rps: [] as number[], latencies: [] as number[], errors: 0 }));
    for (let r = 0; r < ROUNDS; r++) {
      for (const [i, shape] of shapes.entries()) {
        const out = await load(server.url, shape.senders, MEASURE_MS);
        results[i]!.rps.push(out.latencies.length / (MEASURE_MS / 1000));
        results[i]!.latencies.push(...out.latencies);
        results[i]!.errors += out.errors;
      }
    }
    for (const [i, shape] of shapes.entries()) {
      const r = results[i]!;
      const sorted = [...r.latencies].sort((a, b) => a - b);
      rows.push({
        load: shape.label,
        'messages/s (median of rounds)': round([...r.rps].sort((a, b) => a - b)[Math.floor(r.rps.length / 2)]!, 0),
        'p50 ms': round(percentile(sorted, 50)),
        'p99 ms': round(percentile(sorted, 99)),
        errors: r.errors,
      });
    }
  } finally {
    await new Promise((done) => (server.child.once('exit', done), server.child.kill('SIGTERM')));
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return {
    title: 'Relay-message writes through the write gate (Node, real Postgres)',
    rows,
    notes:
      'The membership and key check rides in the statement that takes the seq (or the orbit row\'s key-share lock); a removal or key change ' +
      'committed since that statement\'s snapshot costs one more read, only then. Database round trips per request, counted at the pg client ' +
      '(2026-12-04, whole request), before the gate → with it: message 7 → 6, thread 8 → 7, reply 10 → 9, read marker 3 → 1, upload start 8 → 8, ' +
      'chunk 2 → 2, attach 9 → 9, delete 14 → 14, complete 12 → 13 (the gate is taken before the media row, the order removal locks them in).',
  };
}

export default { name: 'writes', run } satisfies Bench;
