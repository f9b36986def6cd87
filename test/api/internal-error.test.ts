// A failure nobody planned for answers 500 INTERNAL in the contract's shape, with no internal text;
// a database that went away answers 503 UNAVAILABLE. Same app on every runtime.
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app';
import { parseConfig } from '../../src/config';
import type { Deps } from '../../src/deps';
import { SessionCache } from '../../src/domain/session-cache';
import { expectError, post } from '../support/api';
import { TEST_ENV } from '../support/types';

function appWithFailingDatabase(error: Error) {
  const failing = new Proxy({}, { get: () => () => { throw error; } });
  const logs: string[] = [];
  const deps = {
    config: parseConfig(TEST_ENV),
    db: failing,
    blobs: failing,
    fanout: failing,
    live: failing,
    clock: { now: () => new Date() },
    limiter: { enabled: false },
    hasher: { hash: async () => 'x', verify: async () => false },
    sessions: new SessionCache(),
    logger: { log: (_level: string, fields: Record<string, unknown>) => logs.push(JSON.stringify(fields)) },
    docsAssets: async () => null,
    clientIp: () => '192.0.2.1',
    defer: () => {},
  } as unknown as Deps;
  return { app: createApp(deps), logs };
}

describe('unexpected failures', () => {
  it('answer 500 INTERNAL without the error text, SQL or stack, and log no secret', async () => {
    const secretSql = 'SELECT password_hash FROM users WHERE username = $1 -- hunter2';
    const { app, logs } = appWithFailingDatabase(new Error(secretSql));
    const res = await app.request('/api/auth/login', post({ username: 'someone', password: 'hunter2hunter2' }));
    const err = await expectError(res, 500, 'INTERNAL');
    expect(JSON.stringify(err)).not.toContain('password_hash');
    expect(logs.join('\n')).not.toContain('hunter2');
  });

  it("log the error's class, its cause's class and code and a code location, never a driver's multi-line text", async () => {
    // drizzle's message: the SQL on one line, the bound parameters on the next.
    const driver = Object.assign(new Error('relation "x" is broken'), { code: 'XX000' });
    const failed = Object.assign(new Error('Failed query: select * from users where username = $1\nparams: hunter2_user'), { name: 'DrizzleQueryError', cause: driver });
    const { app, logs } = appWithFailingDatabase(failed);
    await expectError(await app.request('/api/auth/login', post({ username: 'hunter2_user', password: 'x'.repeat(12) })), 500, 'INTERNAL');
    const entry = JSON.parse(logs.find((l) => l.includes('unhandled error'))!);
    expect(entry).toMatchObject({ error: 'DrizzleQueryError', cause: 'Error', code: 'XX000' });
    expect(entry.at).toMatch(/^[\w/.-]+\.ts:\d+:\d+$/);
    expect(logs.join('\n')).not.toMatch(/hunter2|params|select|relation/);
  });

  it('answer 503 UNAVAILABLE when the database connection is refused', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const { app } = appWithFailingDatabase(refused);
    const res = await app.request('/api/auth/login', post({ username: 'someone', password: 'x'.repeat(12) }));
    const err = await expectError(res, 503, 'UNAVAILABLE');
    expect(err.message).not.toContain('5432');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});
