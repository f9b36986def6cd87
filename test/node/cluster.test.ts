// WORKERS=2 as `npm start` runs it on a real Postgres: two workers on one port sharing one JWT
// secret, a killed worker replaced while requests keep being answered, graceful shutdown; and the
// embedded database refused with one line.
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrbit, registerUser } from '../support/api';
import { freshDatabase, startServerProcess, type ServerProcess } from '../support/server-process';
import type { Target } from '../support/types';

const postgres = process.env.TEST_DATABASE_URL;
if (!postgres) console.warn('cluster: the WORKERS=2 test skipped, it needs a real Postgres (set TEST_DATABASE_URL)');

/** One request on its own connection: a pooled connection to a killed worker would only show that. */
function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    })
      .on('error', reject)
      .end();
  });
}

const workerPids = (output: string) =>
  output
    .split('\n')
    .filter((l) => l.includes('"msg":"worker listening"'))
    .map((l) => JSON.parse(l).pid as number);

async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!postgres)('WORKERS=2 on Postgres', () => {
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let server: ServerProcess;
  let dataDir: string;

  beforeAll(async () => {
    database = await freshDatabase(postgres!, 'orbital_cluster');
    dataDir = mkdtempSync(join(tmpdir(), 'orbital-cluster-'));
    // No JWT_SECRET: the primary generates one into DATA_DIR and hands it to both workers.
    server = await startServerProcess({ WORKERS: '2', DATABASE_URL: database.url, DATA_DIR: dataDir, JWT_SECRET: '', RATE_LIMIT: 'off', METRICS: 'on' });
    await until(() => workerPids(server.output()).length === 2, 'two workers');
    // Each worker checks the migrations itself and answers 503 until then: startServerProcess saw
    // one /ready, from either. Ten in a row on fresh connections (handed out in turn) are both.
    let inARow = 0;
    await until(async () => ((inARow = (await get(server.url + '/ready')) === 200 ? inARow + 1 : 0), inARow >= 10), 'both workers ready');
  });
  afterAll(async () => {
    await server?.kill('SIGKILL');
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers /metrics for the whole server: every scrape counts every worker’s requests, whichever worker it reaches', async () => {
    for (let i = 0; i < 10; i++) expect(await get(server.url + '/api/config')).toBe(200); // fresh connections: both workers
    const counted: number[] = [];
    for (let i = 0; i < 4; i++) {
      const text = await new Promise<string>((resolve, reject) => {
        request(server.url + '/metrics', { agent: false }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve(body));
        })
          .on('error', reject)
          .end();
      });
      const line = text.split('\n').find((l) => l.startsWith('orbital_http_requests_total{method="GET",route="/api/config",status="200"}'));
      counted.push(Number(line?.split(' ').pop()));
    }
    expect(counted).toEqual([10, 10, 10, 10]);
  });

  it('serves from both workers with one secret, replaces a killed worker, and keeps answering', async () => {
    const t = { fetch: (path: string, init?: RequestInit) => fetch(server.url + path, init) } as unknown as Target;
    // A token issued by one worker is accepted by the other: many requests, on fresh connections,
    // land on both (the primary hands connections out in turn).
    const owner = await registerUser(t);
    for (let i = 0; i < 6; i++) {
      const res = await fetch(server.url + '/api/groups', { headers: { ...owner.auth, connection: 'close' } });
      expect(res.status).toBe(200);
    }
    await createOrbit(t, owner);

    const [victim, survivor] = workerPids(server.output());
    process.kill(victim!, 'SIGKILL');
    await until(() => server.output().includes('"msg":"worker died"'), 'the primary to see the death');
    // While the replacement starts, the other worker answers every new connection.
    const statuses = await Promise.all(Array.from({ length: 20 }, () => get(server.url + '/ready')));
    expect(statuses).toEqual(Array(20).fill(200));

    const replacement = await until(() => workerPids(server.output()).find((pid) => pid !== victim && pid !== survivor), 'a replacement worker');
    expect(replacement).toBeGreaterThan(0);
    const mine = await fetch(server.url + '/api/groups', { headers: owner.auth });
    expect(mine.status).toBe(200);
    expect((await mine.json()).items).toHaveLength(1);
  });

  it('stops gracefully on SIGTERM: every worker shuts down, then the primary exits 0', async () => {
    expect(await server.kill('SIGTERM')).toBe(0);
    const out = server.output();
    expect(out).toContain('"msg":"shutting down workers"');
    expect(out.match(/"msg":"shutting down","signal"/g)).toHaveLength(2);
  });
});

describe('WORKERS start-up failures', () => {
  it('stops with the worker\'s error when no worker can start, instead of restarting forever', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'orbital-cluster-'));
    // The port is taken: every worker fails to listen.
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const result = spawnSync(process.execPath, ['dist/server.js'], {
      env: { ...process.env, DATA_DIR: dataDir, WORKERS: '2', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none', HOST: '127.0.0.1', PORT: String((taken.address() as { port: number }).port), LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    taken.close();
    rmSync(dataDir, { recursive: true, force: true });
    expect(result.status, result.stderr).toBe(1);
  });


  it('stops start-up with one line saying DATABASE_URL is needed', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'orbital-cluster-'));
    const result = spawnSync(process.execPath, ['dist/server.js'], {
      env: { ...process.env, DATA_DIR: dataDir, WORKERS: '2', DATABASE_URL: '', PORT: '0' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    rmSync(dataDir, { recursive: true, force: true });
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual(['WORKERS=2 needs DATABASE_URL: the embedded database (PGlite) can be opened by one process only']);
  });
});
