// `npm start` as a self-hoster runs it: a fresh data folder, no database, then graceful shutdown.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runEntry, startServerProcess } from '../support/server-process';
import { newDataDir } from '../support/data-dirs';
import { INSECURE_COST_WARNING } from '../../src/domain/password-hasher';

// The start script's own command, run with this Node; the global setup built dist/. It is the
// entry startServerProcess starts (dist/server.js), so the first test runs what `npm start` runs.
const START = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start.split(' ');
if (START.join(' ') !== 'node dist/server.js') throw new Error(`npm start no longer runs node dist/server.js: ${START.join(' ')}`);
const startArgs = START.slice(1);

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function freshDir() {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-start-'));
  dirs.push(dir);
  return dir;
}

describe('npm start', () => {
  // A first start on an empty folder runs initdb (seconds alone, a minute beside the rest of CI).
  it('serves /ready on embedded Postgres with nothing configured, keeps its secret 0600, and stops cleanly on SIGTERM', { timeout: 240_000 }, async () => {
    const dataDir = freshDir();
    // On port 0 (a port picked at random could collide with another test's server); resolves with
    // the URL of its `listening` line, and fails with its output if it exits first.
    const server = await startServerProcess({ DATA_DIR: dataDir, DATABASE_URL: '', JWT_SECRET: '' }, 180_000);
    let exited: number | null;
    try {
      const ready = await fetch(`${server.url}/ready`);
      expect(ready.status, server.output()).toBe(200);
      expect(statSync(join(dataDir, 'jwt-secret')).mode & 0o777).toBe(0o600);
    } finally {
      exited = await server.kill('SIGTERM');
    }
    expect(exited).toBe(0);
    expect(server.output()).toContain('"msg":"shutting down"');
    expect(server.output()).not.toContain('PASSWORD_HASH_COST');
  });

  it('says at error level, which LOG_LEVEL=error still shows, that it hashes passwords at the test cost', async () => {
    const dataDir = newDataDir('orbital-start-');
    dirs.push(dataDir);
    const server = runEntry('src/runtime/node.ts', { DATA_DIR: dataDir, DATABASE_URL: '', JWT_SECRET: '', PORT: '0', HOST: '127.0.0.1', PASSWORD_HASH_COST: 'insecure-test', LOG_LEVEL: 'error' });
    try {
      // Its only line at this level: nothing else is said when it listens.
      await expect.poll(() => server.output(), { timeout: 60_000, interval: 100 }).toContain('\n');
    } finally {
      await server.kill('SIGTERM');
    }
    expect(JSON.parse(server.output().split('\n')[0]!)).toMatchObject({ level: 'error', msg: INSECURE_COST_WARNING });
  });

  it('refuses a bad configuration value with one line naming the variable', () => {
    const result = spawnSync(process.execPath, startArgs, {
      env: { ...process.env, DATA_DIR: freshDir(), PORT: 'not-a-port', DATABASE_URL: '' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^Invalid configuration: PORT /);
  });
});
