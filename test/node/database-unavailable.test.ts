// A database that is down or missing: the Node server still starts (as `npm start` does), answers
// 503 UNAVAILABLE with Retry-After on every route that needs it, and logs the error's class and
// our own code location only — never the driver's text, which carries SQL and bound parameters.
import { createServer } from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { post, publicKey } from '../support/api';
import { startServerProcess, type ServerProcess } from '../support/server-process';
import { expectCleanLog, expectUnavailableAnswers } from '../support/unavailable';

let server: ServerProcess | undefined;
afterEach(async () => {
  await server?.kill('SIGTERM');
  server = undefined;
});

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function expectUnavailable(databaseUrl: string) {
  server = await startServerProcess({ DATABASE_URL: databaseUrl, JWT_SECRET: 'x'.repeat(40), RATE_LIMIT: 'on' });
  const username = await expectUnavailableAnswers((path, init) => fetch(server!.url + path, init));
  // Our own code's location only (a driver's or the runtime's frames are left out).
  for (const entry of expectCleanLog(server.output().split('\n'), username)) if (entry.at !== undefined) expect(entry.at).toMatch(/^(src|dist)\//);
}

describe('database down or missing (Node)', () => {
  it('nothing listening on the database port: 503 UNAVAILABLE with Retry-After', async () => {
    await expectUnavailable(`postgres://postgres@127.0.0.1:${await closedPort()}/orbital`);
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)('a database that does not exist: 503 UNAVAILABLE; once created, migrated and served', async () => {
    const name = `orbital_missing_${Math.random().toString(36).slice(2, 10)}`;
    const url = new URL(process.env.TEST_DATABASE_URL!);
    url.pathname = `/${name}`;
    await expectUnavailable(url.toString());
    const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
    await admin.connect();
    try {
      await admin.query(`create database ${name}`);
      await vi.waitFor(() => expect(server!.output()).toContain('migrations applied'), { timeout: 30_000, interval: 250 });
      const res = await fetch(server!.url + '/api/auth/register', post({ username: `back_${name.slice(-8)}`, password: 'a long password', public_key: publicKey() }));
      expect(res.status).toBe(201);
    } finally {
      await server?.kill('SIGTERM');
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  });
});
