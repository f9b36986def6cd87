// A database that is missing, on Workers: every route that needs it answers 503 UNAVAILABLE with
// Retry-After (register included), /health stays up, and the log says the error's class only —
// never the driver's text with its SQL and bound parameters.
import { env } from 'cloudflare:test';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTarget } from '#target';
import { openNeon } from '../../src/adapters/db-neon';
import type { WorkerEnv } from '../../src/runtime/worker-deps';
import { expectCleanLog, expectUnavailableAnswers } from '../support/unavailable';

const bindings = env as unknown as WorkerEnv;
afterEach(() => vi.restoreAllMocks());

/** The test database's URL with another, absent, database name. */
function missingDatabase(): string {
  const url = new URL(bindings.DATABASE_URL);
  url.pathname = `/orbital_missing_${Math.random().toString(36).slice(2, 10)}`;
  return url.toString();
}

/** PGlite serves whatever database name it is asked for: only a real Postgres can miss one. */
async function servesAnyName(url: string): Promise<boolean> {
  const handle = openNeon(url, { wsProxy: bindings.DB_WS_PROXY });
  try {
    await handle.pool.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await handle.close();
  }
}

async function expectUnavailable(vars: Record<string, string>) {
  const logged: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(' ')));
  const t = await createTarget({ env: { RATE_LIMIT: 'on', LOG_LEVEL: 'info', ...vars } });
  expectCleanLog(logged, await expectUnavailableAnswers((path, init) => t.fetch(path, init)));
}

describe('database down or missing (Workers)', () => {
  it('a database that does not exist: 503 UNAVAILABLE with Retry-After, no driver text logged', async (ctx) => {
    const url = missingDatabase();
    if (await servesAnyName(url)) ctx.skip();
    await expectUnavailable({ DATABASE_URL: url });
  });

  it('nothing listening on the database port: the same', async () => {
    const url = new URL(bindings.DATABASE_URL);
    url.port = '1';
    await expectUnavailable({ DATABASE_URL: url.toString() });
  });

  it('the WebSocket proxy in front of the database unreachable: the same', async () => {
    await expectUnavailable({ DB_WS_PROXY: '127.0.0.1:1' });
  });
});
