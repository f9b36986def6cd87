// The Worker as a user runs it: `npm run dev:worker` (wrangler dev, the WebSocket-to-TCP proxy,
// a fresh Postgres database it creates and migrates), driven by the typed client through every
// kind of traffic, then stopped with Ctrl-C. `npm run test:e2e:worker`; needs Postgres
// (TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiError,
  OrbitalClient,
  SecureClient,
  downloadEncryptedFile,
  downloadRaw,
  subscribe,
  uploadEncryptedFile,
  type OrbitEvent,
} from '../../src/client';

const base = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const database = `orbital_e2e_${randomBytes(4).toString('hex')}`;
const databaseUrl = Object.assign(new URL(base), { pathname: `/${database}` }).toString();
const dir = mkdtempSync(join(tmpdir(), 'orbital-wrangler-e2e-'));
const password = 'correct horse battery staple';

let dev: ChildProcess;
let output = '';
let server: string;
let proxyPort: number;
let sql: pg.Client;

/** Resolves with the first match of `pattern` in the launcher's output. */
function waitFor(pattern: RegExp, timeoutMs = 120_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; output:\n${output}`)), timeoutMs);
    const check = () => {
      const match = output.match(pattern);
      if (!match) return;
      clearTimeout(timer);
      dev.stdout!.off('data', check);
      resolve(match);
    };
    dev.stdout!.on('data', check);
    dev.once('exit', (code) => reject(new Error(`npm run dev:worker exited (${code}) early:\n${output}`)));
    check();
  });
}

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(false)));
    socket.once('error', () => resolve(true));
  });

beforeAll(async () => {
  // As the README says: a .dev.vars with the two secrets (here in a temporary file), then the script.
  const vars = join(dir, '.dev.vars');
  writeFileSync(vars, `DATABASE_URL=${databaseUrl}\nJWT_SECRET=${randomBytes(32).toString('hex')}\nRATE_LIMIT=off\n`);
  dev = spawn('npm', ['run', 'dev:worker', '--', '--ip', '127.0.0.1', '--port', '0', '--persist-to', join(dir, 'state')], {
    env: { ...process.env, DEV_VARS_FILE: vars, CI: 'true', WRANGLER_SEND_METRICS: 'false' },
    // Its own process group: stopping it is Ctrl-C to the whole group, as in a terminal.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  dev.stdout!.on('data', (chunk) => (output += chunk));
  dev.stderr!.on('data', (chunk) => (output += chunk));
  expect((await waitFor(/database (\S+) created and migrated/))[1]).toBe(database);
  proxyPort = Number((await waitFor(/WebSocket-to-TCP proxy on 127\.0\.0\.1:(\d+)/))[1]);
  server = (await waitFor(/Ready on (http:\/\/127\.0\.0\.1:\d+)/))[1]!;
  sql = new pg.Client({ connectionString: databaseUrl });
  await sql.connect();
}, 180_000);

afterAll(async () => {
  await sql?.end();
  if (dev && dev.exitCode === null) process.kill(-dev.pid!, 'SIGKILL');
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`drop database if exists ${database} with (force)`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
});

describe('npm run dev:worker', () => {
  it('serves the typed client: accounts, orbits, keys, threads, messages, live events, media, cron', async () => {
    const client = () => new OrbitalClient({ server, retries: 0 });
    const { secure: owner } = await SecureClient.register(client(), { username: `owner_${database.slice(-8)}`, password });
    const { secure: member } = await SecureClient.register(client(), { username: `member_${database.slice(-8)}`, password });

    // Orbit, invite and join, key delivery.
    const { group } = await owner.createOrbit('wrangler dev');
    const invite = await owner.api.createInvite(group.id, { max_uses: 1 });
    await member.api.joinGroup(invite.code!);
    const [pending] = await owner.pendingMembers(group.id);
    expect(pending?.user_id).toBe(member.identity.userId);
    await owner.deliver(group.id, pending!);
    expect((await member.orbitKey(group.id)).epoch).toBe(1);

    // A live socket for the owner, open before the member writes.
    const events: OrbitEvent[] = [];
    let ready!: () => void;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    const live = subscribe(owner.api, group.id, { onEvent: (event) => void events.push(event), onReady: () => ready() });
    await isReady;

    // Thread, reply, relay message: each readable by the other side.
    const thread = await member.postThread(group.id, 'title from workerd', 'body from workerd');
    expect(await owner.readThread(await owner.api.getThread(thread.id))).toEqual({ title: 'title from workerd', body: 'body from workerd' });
    const reply = await owner.reply(thread.id, 'a reply');
    expect((await member.api.listReplies(thread.id)).items.map((r) => r.id)).toEqual([reply.id]);
    await member.sendText(group.id, 'a relay message');
    const [message] = (await owner.api.listMessages(group.id)).items;
    expect(await owner.readMessage(group.id, message!)).toBe('a relay message');

    // The live socket saw the member's thread as it happened.
    await expect.poll(() => events.map((e) => e.type), { timeout: 10_000 }).toEqual(expect.arrayContaining(['thread_created', 'reply_created']));
    expect(events.find((e) => e.type === 'thread_created')).toMatchObject({ data: { id: thread.id } });
    live.close();
    await live.closed;

    // 12 MiB through R2: three chunks up, the whole file back (decrypted), then a ranged download.
    const plain = randomBytes(12 * 1024 * 1024);
    const source = join(dir, 'upload.bin');
    writeFileSync(source, plain);
    const cipher = await member.currentCipher(group.id);
    const { media, metadata } = await uploadEncryptedFile(member.api, { cipher, path: source, threadId: thread.id });
    const copy = join(dir, 'download.bin');
    await downloadEncryptedFile(owner.api, await owner.api.mediaInfo(media.id), metadata, copy);
    expect(readFileSync(copy).equals(plain)).toBe(true);
    const raw = join(dir, 'raw.bin');
    await downloadRaw(owner.api, media.id, raw);
    const stored = readFileSync(raw);
    expect(stored.length).toBe(media.size_bytes);
    const ranged = await owner.api.download(media.id, { range: 'bytes=5242000-5243999' });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 5242000-5243999/${stored.length}`);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(stored.subarray(5242000, 5244000))).toBe(true);
    // The typed client resumes a partial file with a Range request.
    const partial = join(dir, 'partial.bin');
    writeFileSync(partial, stored.subarray(0, 7_000_000));
    await downloadRaw(owner.api, media.id, partial);
    expect(readFileSync(partial).equals(stored)).toBe(true);

    // The cron through wrangler's /__scheduled: an expired media row and its R2 object go.
    await sql.query(`update media set expires_at = now() - interval '1 minute' where id = $1`, [media.id]);
    const cron = await fetch(`${server}/__scheduled?cron=${encodeURIComponent('17 * * * *')}`);
    expect(cron.status).toBe(200);
    await cron.text();
    expect((await sql.query('select id from media where id = $1', [media.id])).rows).toEqual([]);
    const gone = await owner.api.download(media.id).catch((err: unknown) => err);
    expect(gone).toBeInstanceOf(ApiError);
    expect({ status: (gone as ApiError).status, code: (gone as ApiError).code }).toEqual({ status: 410, code: 'GONE' });

    // Removal closes the member's live socket 4403, and the typed client ends on the close frame
    // (the runtime keeps the connection itself about 10 s longer: README, "Live sockets on Workers").
    let memberReady!: () => void;
    const memberIsReady = new Promise<void>((resolve) => (memberReady = resolve));
    const memberLive = subscribe(member.api, group.id, { onEvent: () => undefined, onReady: () => memberReady() });
    await memberIsReady;
    const removedAt = Date.now();
    await owner.api.removeMember(group.id, member.identity.userId);
    expect(await memberLive.closed).toEqual({ code: 4403, reason: 'removed from the orbit' });
    console.log(`removal to the end of the member's subscription: ${Date.now() - removedAt} ms`);
  });

  it('stops on Ctrl-C, proxy and all', async () => {
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => dev.once('exit', (code, signal) => resolve({ code, signal })));
    process.kill(-dev.pid!, 'SIGINT');
    // npm itself may die of the SIGINT; the launcher under it stops wrangler, then the proxy.
    expect([{ code: 0, signal: null }, { code: null, signal: 'SIGINT' }]).toContainEqual(await exited);
    await expect.poll(() => output, { timeout: 15_000 }).toContain('dev:worker: stopped');
    expect(await refused(Number(new URL(server).port))).toBe(true);
    expect(await refused(proxyPort)).toBe(true);
  });
});
