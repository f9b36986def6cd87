// DATA_DIR with the embedded database, as `npm start` uses it: one process at a time (a second
// server, cleanup and db:migrate stop with one line naming the holder), owner-only permissions on
// everything in it (PGlite's files included), a stale lock taken over, and a port in use told in one line.
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEntry as run, startServerProcess, type NodeProcess, type ServerProcess } from '../support/server-process';

const base = mkdtempSync(join(tmpdir(), 'orbital-datadir-'));
const dataDir = join(base, 'data');
const env = { DATA_DIR: dataDir, DATABASE_URL: '', JWT_SECRET: '' };
let server: ServerProcess;
// Killed at the end whatever happened: a process that should have stopped must not outlive the test.
const started: NodeProcess[] = [];
const runEntry = (...args: Parameters<typeof run>) => {
  const child = run(...args);
  started.push(child);
  return child;
};

/** Every path under `dir` whose mode lets anyone but the owner in. */
function openToOthers(dir: string): { files: number; open: string[] } {
  let files = 0;
  const open: string[] = [];
  const walk = (path: string) => {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) return;
    if ((stat.mode & 0o077) !== 0) open.push(`${path} ${(stat.mode & 0o777).toString(8)}`);
    if (stat.isDirectory()) for (const entry of readdirSync(path)) walk(join(path, entry));
    else files++;
  };
  walk(dir);
  return { files, open };
}

const lines = (out: string) => out.trim().split('\n').filter(Boolean);

beforeAll(async () => {
  // A folder as an older version left it: open to the group and the world.
  mkdirSync(join(dataDir, 'blobs'), { recursive: true });
  writeFileSync(join(dataDir, 'blobs', 'old-file'), 'x');
  chmodSync(join(dataDir, 'blobs', 'old-file'), 0o666);
  chmodSync(join(dataDir, 'blobs'), 0o777);
  chmodSync(dataDir, 0o755);
  server = await startServerProcess(env, 240_000);
}, 300_000);

afterAll(async () => {
  await server?.kill();
  await Promise.all(started.map((child) => child.kill()));
  rmSync(base, { recursive: true, force: true });
});

describe('DATA_DIR', () => {
  it('keeps everything in it to its owner: 0700 folders, 0600 files, PGlite’s included', () => {
    const { files, open } = openToOthers(dataDir);
    expect(files).toBeGreaterThan(100); // PGlite's cluster is in there
    expect(open).toEqual([]);
  });

  it('refuses a second server with one line naming the first one’s pid', async () => {
    const second = runEntry('src/runtime/node.ts', { ...env, PORT: '0', HOST: '127.0.0.1' });
    expect(await second.exited).toBe(1);
    expect(lines(second.output())).toEqual([expect.stringContaining(`is in use by process ${server.proc.pid}`)]);
  }, 180_000);

  it('refuses cleanup and db:migrate while the server holds the folder', async () => {
    for (const entry of ['src/cli/cleanup.ts', 'src/cli/migrate.ts']) {
      const cli = runEntry(entry, env);
      expect(await cli.exited, entry).toBe(1);
      expect(lines(cli.output()), entry).toEqual([expect.stringContaining(`is in use by process ${server.proc.pid}`)]);
    }
  }, 180_000);

  it('says in one line that the port is in use, without a stack', async () => {
    const port = new URL(server.url).port;
    const other = runEntry('src/runtime/node.ts', { ...env, DATA_DIR: join(base, 'other'), PORT: port, HOST: '127.0.0.1' });
    expect(await other.exited).toBe(1);
    expect(lines(other.output()).filter((l) => !l.startsWith('{'))).toEqual([`Error: Port ${port} on 127.0.0.1 is already in use (another server?): stop it, or set PORT to a free port.`]);
  }, 180_000);

  it('takes over the lock of a server that was killed, and releases it on a clean stop', async () => {
    await server.kill('SIGKILL');
    expect(existsSync(join(dataDir, 'orbital.lock'))).toBe(true);
    const next = await startServerProcess(env, 240_000);
    expect((await fetch(next.url + '/ready')).status).toBe(200);
    expect(await next.kill('SIGTERM')).toBe(0);
    expect(existsSync(join(dataDir, 'orbital.lock'))).toBe(false);
  }, 300_000);
});
