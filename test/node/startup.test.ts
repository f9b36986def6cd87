// `npm start` as a self-hoster runs it: a fresh data folder, no database, then graceful shutdown.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// The start script's own command (`node dist/server.js`), run with this Node; the global setup built dist/.
const START = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start.split(' ');
if (START[0] !== 'node') throw new Error(`npm start no longer runs node: ${START.join(' ')}`);
const startArgs = START.slice(1);

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function freshDir() {
  const dir = mkdtempSync(join(tmpdir(), 'orbital-start-'));
  dirs.push(dir);
  return dir;
}

/** The URL the server logs once it listens, or a failure naming what it printed if it exits first. */
function listeningUrl(child: ChildProcess, output: () => string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening after ${timeoutMs} ms:\n${output()}`)), timeoutMs);
    const onData = () => {
      const line = output().split('\n').slice(0, -1).find((l) => l.includes('"msg":"listening"')); // whole lines only
      if (!line) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { url: string }).url);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited (${code}) before listening:\n${output()}`));
    });
  });
}

describe('npm start', () => {
  // A first start on an empty folder runs initdb (seconds alone, a minute beside the rest of CI).
  it('serves /ready on embedded Postgres with nothing configured, keeps its secret 0600, and stops cleanly on SIGTERM', { timeout: 240_000 }, async () => {
    const dataDir = freshDir();
    // Port 0: the kernel picks a free one (a random pick could collide with another test's server).
    const child = spawn(process.execPath, startArgs, {
      env: { ...process.env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', DATABASE_URL: '', JWT_SECRET: '', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await listeningUrl(child, () => output, 180_000);
      const ready = await fetch(`${url}/ready`);
      expect(ready.status, output).toBe(200);
      expect(statSync(join(dataDir, 'jwt-secret')).mode & 0o777).toBe(0o600);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(output).toContain('"msg":"shutting down"');
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
