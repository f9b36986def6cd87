// The client as an app installs it: `npm pack`, the tarball installed into an empty project, and a
// plain ESM script (no TypeScript, no bundler) importing `orbital-relay/client` that registers,
// creates an orbit, subscribes to it and sees its own thread arrive as a live event — against a
// server started here. Its declarations type-check in a consumer with Node's ESM resolution.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '../support/node-target';
import { freePort } from '../support/s3-server';
import { untilReady } from '../support/server-process';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const npm = (args: string[], cwd: string) =>
  run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, maxBuffer: 16 << 20, env: { ...process.env, npm_config_update_notifier: 'false' } });

const APP = `
import { OrbitalClient, SecureClient, ApiError, subscribe } from 'orbital-relay/client';

const server = process.argv[2];
const name = 'app' + Math.random().toString(36).slice(2, 8);
const { secure } = await SecureClient.register(new OrbitalClient({ server }), { username: name, password: 'correct horse battery staple' });
const { group } = await secure.createOrbit('from the app');
const seen = new Promise((resolve, reject) => {
  const sub = subscribe(secure.api, group.id, {
    onReady: () => secure.postThread(group.id, 'hello from an app', 'body').catch(reject),
    onEvent: async (event) => {
      if (event.type !== 'thread_created') return;
      const text = (await secure.describeEvent(event)).text;
      sub.close();
      resolve({ type: event.type, seq: event.seq, text });
    },
  });
  setTimeout(() => reject(new Error('no live event within 30 s')), 30_000).unref();
});
const refused = await secure.api.getGroup('00000000-0000-4000-8000-000000000000').catch((e) => e);
console.log(JSON.stringify({ event: await seen, refused: { isApiError: refused instanceof ApiError, status: refused.status, code: refused.code } }));
`;

const CONSUMER_TS = `
import { OrbitalClient, SecureClient, subscribe, type OrbitEvent, type LiveSubscription } from 'orbital-relay/client';
const api: OrbitalClient = new OrbitalClient({ server: 'http://127.0.0.1:1' });
export async function start(): Promise<LiveSubscription> {
  const { secure } = await SecureClient.register(api, { username: 'x', password: 'y' });
  return subscribe(secure.api, 'id', { onEvent: (e: OrbitEvent) => void e.seq });
}
`;

let t: Awaited<ReturnType<typeof createTarget>>;
let dir: string;
let tarball: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'orbital-pkg-'));
  t = await createTarget();
  const packed = await npm(['pack', '--json', '--pack-destination', dir], ROOT);
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string }[];
  tarball = join(dir, info!.filename);
  const app = join(dir, 'app');
  await run('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'an-app', private: true, type: 'module' }));
  // From npm's cache when `npm install` ran here before; no install scripts needed for the client.
  await npm(['install', tarball, '--prefer-offline', '--ignore-scripts', '--no-package-lock'], app);
}, 300_000);

afterAll(async () => {
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed client', () => {
  it('register → orbit → thread → live event from plain Node ESM', async () => {
    const app = join(dir, 'app');
    writeFileSync(join(app, 'main.mjs'), APP);
    // The standard WebSocket: global from Node 22, behind a flag on Node 20 — as in a browser.
    const flags = Number(process.versions.node.split('.')[0]) < 22 ? ['--experimental-websocket'] : [];
    const { stdout } = await run(process.execPath, [...flags, 'main.mjs', t.url], { cwd: app });
    const result = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(result.event).toMatchObject({ type: 'thread_created', text: 'hello from an app' });
    expect(result.refused).toEqual({ isApiError: true, status: 404, code: 'NOT_FOUND' });
  });

  it('ships one dependency-free ESM file that imports no Node module', () => {
    const installed = join(dir, 'app/node_modules/orbital-relay');
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    const bundle = readFileSync(join(installed, pkg.exports['./client'].default), 'utf8');
    expect(bundle).not.toMatch(/\bfrom\s*["'][^."']|\bimport\(\s*["'][^."']|\brequire\(/);
    expect(bundle).not.toMatch(/\bprocess\.\w|\bBuffer\./);
  });

  it('its declarations type-check in a TypeScript app with Node ESM resolution', async () => {
    const app = join(dir, 'app');
    writeFileSync(join(app, 'consumer.ts'), CONSUMER_TS);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2023', 'dom'], types: [], strict: true, noEmit: true }, files: ['consumer.ts'] }),
    );
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], { cwd: app }).catch((err: { stdout?: string }) => {
      throw new Error(`tsc failed:\n${err.stdout}`);
    });
  });
});

describe('the packed server', () => {
  it('starts with npm start from the tarball, as the repo does: its prestart build step is packed too', { timeout: 120_000 }, async () => {
    const unpacked = join(dir, 'server');
    await run('mkdir', ['-p', unpacked]);
    await run('tar', ['xzf', tarball, '-C', unpacked]);
    const root = join(unpacked, 'package');
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    const port = await freePort();
    const server = spawn('npm', ['start', '--silent'], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: join(dir, 'server-data'), DATABASE_URL: '', LOG_LEVEL: 'warn' },
    });
    let errors = '';
    server.stderr!.on('data', (d) => (errors += d));
    const exited = new Promise((resolve) => server.once('exit', resolve));
    try {
      const ready = await untilReady(`http://127.0.0.1:${port}`, () => server.exitCode !== null, 90_000);
      expect(server.exitCode, errors).toBe(null);
      expect(ready).toBe(true);
    } finally {
      if (server.exitCode === null) process.kill(-server.pid!, 'SIGTERM');
      await exited;
    }
  });
});
