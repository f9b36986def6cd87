// End to end, as two people would use Orbital: each runs the `orbital` CLI with a home folder of its
// own against one server. They create and join an orbit, deliver the key, write, reply, message,
// move a 20 MiB file and watch each other live; then the server's database, blob store and logs are
// searched for the plaintext canary that was in every name, title, body and file.
//
// Steps run in order and share state. A step whose routes the server does not offer yet is skipped
// with the routes it lacks (see `needs`), so the file can land before every endpoint has.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { jsonLogger } from '../../src/adapters/logger-json';
import { CliWatcher, cliJson, runCli, type CliUser } from '../support/cli-runner';
import { scanDatabase, scanFiles, scanLines, scanPgDump } from '../support/canary-scan';
import { createTarget } from '../support/node-target';
import { missingOperations, offeredOperations, operation, requireOperations, serverUrl } from '../support/offered';

const CANARY = `zk-canary-${randomBytes(8).toString('hex')}`;
const FILE_BYTES = 20 * 1024 * 1024;

let t: Awaited<ReturnType<typeof createTarget>>;
let server: string;
let offered = new Set<string>();
const logLines: string[] = [];
const dirs: string[] = [];
const watchers: CliWatcher[] = [];
const fresh = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
const alice: CliUser = { home: '' };
const bob: CliUser = { home: '' };

const state: {
  aliceId?: string;
  bobId?: string;
  groupId?: string;
  delivered?: boolean;
  threadId?: string;
  mediaId?: string;
  aliceWatch?: CliWatcher;
  bobWatch?: CliWatcher;
} = {};

/** Runs the step only when the server offers `ops` and the steps it builds on ran. */
function needs(ctx: TestContext, ops: string[], previous: unknown[] = []) {
  requireOperations(ctx, offered, ops);
  ctx.skip(previous.some((p) => !p), 'an earlier step did not run');
}

const LIVE = ['post /api/groups/{groupId}/live/ticket', 'get /api/groups/{groupId}/live'];
const offers = (ops: string[]) => missingOperations(offered, ops).length === 0;

beforeAll(async () => {
  t = await createTarget({ logger: jsonLogger('debug', (line) => logLines.push(line)) });
  server = await serverUrl(t);
  offered = await offeredOperations(t);
  // The live socket is an upgrade the OpenAPI document may not list: its ticket route stands for it.
  if (offers([LIVE[0]!])) offered.add(operation(LIVE[1]!));
  alice.home = fresh('orbital-alice-');
  bob.home = fresh('orbital-bob-');
});

afterAll(async () => {
  await Promise.all(watchers.map((w) => w.stop()));
  await t?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('two people, two terminals', () => {
  it('register, create an orbit, and join it with the invite code', async () => {
    const suffix = randomBytes(3).toString('hex');
    const a = await cliJson(alice, server, ['register', `alice_${suffix}`]);
    const b = await cliJson(bob, server, ['register', `bob_${suffix}`]);
    state.aliceId = a.user.id;
    state.bobId = b.user.id;
    expect(a.fingerprint).toMatch(/^([0-9a-f]{4} ){15}[0-9a-f]{4}$/);

    // The private key stays on the device (0600 in a 0700 folder); the server has only the public half.
    expect(statSync(join(alice.home, 'identity.json')).mode & 0o777).toBe(0o600);
    expect(statSync(alice.home).mode & 0o777).toBe(0o700);
    const stored = JSON.parse(readFileSync(join(alice.home, 'identity.json'), 'utf8'));
    expect(stored.private_key.d).toBeTruthy();
    expect(a.user.public_key).not.toHaveProperty('d');
    expect(a.user.public_key.n).toBe(stored.public_key.n);

    const created = await cliJson(alice, server, ['orbit', 'create', `${CANARY} orbit`]);
    state.groupId = created.group.id;
    expect(created.invite.code).toMatch(/^[A-Za-z0-9]{8}$/);

    if (offers(LIVE)) {
      state.aliceWatch = new CliWatcher(alice, server, [state.groupId!]);
      watchers.push(state.aliceWatch);
      await state.aliceWatch.waitFor((l) => l.type === 'ready', 'ready');
    }

    const joined = await cliJson(bob, server, ['join', created.invite.code]);
    expect(joined).toMatchObject({ key_status: 'pending', group: { id: state.groupId } });
  });

  it('the owner delivers the orbit key only with approval, to the key the member sees as its own', async (ctx) => {
    needs(ctx, ['get /api/groups/{groupId}/members', 'put /api/groups/{groupId}/members/{userId}/keys', 'get /api/groups/{groupId}/keys'], [state.groupId]);
    const groupId = state.groupId!;
    if (state.aliceWatch) {
      state.bobWatch = new CliWatcher(bob, server, [groupId]); // pending members may watch
      watchers.push(state.bobWatch);
      await state.bobWatch.waitFor((l) => l.type === 'ready', 'ready');
    }

    // No terminal and no --yes: nothing is delivered.
    const refused = await runCli(alice, server, ['keys', 'deliver', groupId]);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toMatch(/--yes/);

    const members = await cliJson(alice, server, ['orbit', 'members', groupId]);
    const pending = members.items.find((m: any) => m.user_id === state.bobId);
    expect(pending.key_status).toBe('pending');
    const bobSelf = await cliJson(bob, server, ['whoami']);
    expect(pending.fingerprint).toBe(bobSelf.fingerprint);

    const delivered = await cliJson(alice, server, ['keys', 'deliver', groupId, '--yes']);
    expect(delivered.delivered).toEqual([expect.objectContaining({ user_id: state.bobId, key_epochs: [1], already: false })]);
    state.delivered = true;

    const bobsOrbits = await cliJson(bob, server, ['orbits']);
    expect(bobsOrbits.items).toEqual([expect.objectContaining({ id: groupId, key_status: 'delivered' })]);
    if (offers(['patch /api/groups/{groupId}'])) expect(bobsOrbits.items[0].name).toBe(`${CANARY} orbit`);
  });

  it('a thread and a reply, each read by the other', async (ctx) => {
    needs(ctx, ['post /api/threads', 'get /api/groups/{groupId}/threads', 'get /api/threads/{threadId}', 'post /api/threads/{threadId}/replies', 'get /api/threads/{threadId}/replies'], [state.delivered]);
    const groupId = state.groupId!;
    const thread = await cliJson(alice, server, ['post', groupId, '--title', `${CANARY} title`, '--body', `${CANARY} body`]);
    state.threadId = thread.id;
    expect(thread.encrypted_title).not.toContain(CANARY);

    const listed = await cliJson(bob, server, ['threads', groupId]);
    expect(listed.items).toEqual([expect.objectContaining({ id: thread.id, title: `${CANARY} title`, body: `${CANARY} body` })]);

    await cliJson(bob, server, ['reply', thread.id, `${CANARY} reply`]);
    const replies = await cliJson(alice, server, ['replies', thread.id]);
    expect(replies.thread).toMatchObject({ title: `${CANARY} title`, body: `${CANARY} body` });
    expect(replies.items).toEqual([expect.objectContaining({ author_id: state.bobId, text: `${CANARY} reply` })]);
  });

  it('a relay message to the whole orbit', async (ctx) => {
    needs(ctx, ['post /api/groups/{groupId}/messages', 'get /api/groups/{groupId}/messages'], [state.delivered]);
    const sent = await cliJson(bob, server, ['send', state.groupId!, `${CANARY} message`]);
    expect(sent.seq).toBeGreaterThan(0);
    const inbox = await cliJson(alice, server, ['messages', state.groupId!]);
    expect(inbox.items).toEqual([expect.objectContaining({ sender_id: state.bobId, text: `${CANARY} message` })]);
  });

  it('a 20 MiB file: uploaded with a progress bar, downloaded and decrypted byte for byte', { timeout: 180_000 }, async (ctx) => {
    needs(
      ctx,
      [
        'post /api/media/upload',
        'put /api/media/upload/{mediaId}/chunks/{index}',
        'get /api/media/upload/{mediaId}',
        'post /api/media/upload/complete',
        'get /api/media/{mediaId}/info',
        'get /api/media/{mediaId}/download',
        'get /api/groups/{groupId}/media',
      ],
      [state.delivered],
    );
    const dir = fresh('orbital-files-');
    const source = join(dir, `${CANARY}.bin`);
    // Canary text throughout, with random bytes between so no two chunks are alike.
    const content = Buffer.alloc(FILE_BYTES);
    for (let at = 0; at < FILE_BYTES; at += 4096) {
      content.write(`${CANARY} file contents `, at, 'utf8');
      randomBytes(64).copy(content, at + 256);
    }
    writeFileSync(source, content);

    const up = await runCli(alice, server, ['upload', state.groupId!, source, '--progress', ...(state.threadId ? ['--thread', state.threadId] : [])]);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toMatch(/upload .*\[#+\]\s+100%\s+20\.0 MiB \/ 20\.0 MiB\s+[\d.]+ (KiB|MiB|GiB)\/s\s+in \d+:\d\d/);
    const mediaId = up.stdout.match(/ as ([0-9a-f-]{36})/)?.[1];
    expect(mediaId, up.stdout).toBeTruthy();
    state.mediaId = mediaId;

    const files = await cliJson(bob, server, ['files', state.groupId!]);
    expect(files.items).toEqual([expect.objectContaining({ id: mediaId, file: { name: `${CANARY}.bin`, type: 'application/octet-stream', size: FILE_BYTES } })]);

    const out = join(fresh('orbital-downloads-'), 'copy.bin');
    const down = await runCli(bob, server, ['download', mediaId!, '--out', out, '--progress']);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stderr).toMatch(/download copy\.bin \[#+\]\s+100%/);
    const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(digest(readFileSync(out))).toBe(digest(content));
  });

  it('each sees the other’s events live, decrypted, in seq order without gaps', async (ctx) => {
    needs(ctx, LIVE, [state.aliceWatch, state.bobWatch, state.threadId]);
    const aliceSaw = state.aliceWatch!;
    const bobSaw = state.bobWatch!;
    await aliceSaw.waitFor((l) => l.type === 'member_joined' && l.data?.user_id === state.bobId, 'bob joining');
    await aliceSaw.waitFor((l) => l.type === 'reply_created' && l.text === `${CANARY} reply`, 'bob’s reply');
    await bobSaw.waitFor((l) => l.type === 'member_key_delivered', 'the key delivery');
    await bobSaw.waitFor((l) => l.type === 'thread_created' && l.text === `${CANARY} title`, 'alice’s thread');
    if (state.mediaId) await bobSaw.waitFor((l) => l.type === 'media_uploaded' && l.text === `${CANARY}.bin`, 'alice’s file');
    if (offers(['post /api/groups/{groupId}/messages'])) {
      await aliceSaw.waitFor((l) => l.type === 'message_created' && l.text === `${CANARY} message`, 'bob’s message');
    }
    for (const watcher of [aliceSaw, bobSaw]) {
      const seqs = watcher.lines.filter((l) => l.group_id).map((l) => l.seq);
      expect(seqs.length).toBeGreaterThan(2);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0] + i));
    }
  });

  it('removing a member rotates the orbit key for exactly the members left', async (ctx) => {
    needs(ctx, ['delete /api/groups/{groupId}/members/{userId}', 'post /api/groups/{groupId}/keys', 'get /api/groups/{groupId}/keys'], [state.delivered]);
    const groupId = state.groupId!;
    const removed = await cliJson(alice, server, ['orbit', 'remove', groupId, (await cliJson(bob, server, ['whoami'])).user.username, '--yes']);
    expect(removed.rotation).toEqual({ key_epoch: 2, user_ids: [state.aliceId] });
    if (state.bobWatch) {
      expect(await state.bobWatch.exited).toBe(1);
      expect(state.bobWatch.stderr).toMatch(/removed/);
    }
    const later = await runCli(bob, server, ['--json', 'threads', groupId]);
    expect(later.code).toBe(1);

    if (offers(['post /api/threads'])) {
      await cliJson(alice, server, ['post', groupId, '--title', `${CANARY} after rotation`]);
      const threads = await cliJson(alice, server, ['threads', groupId]);
      expect(threads.items.map((x: any) => [x.key_epoch, x.title])).toEqual([
        [2, `${CANARY} after rotation`],
        [1, `${CANARY} title`],
      ]);
    }
  });

  it('the plaintext canary is nowhere on the server: database, blob store, logs', async () => {
    const db = await scanDatabase(t, CANARY);
    expect(db.rows).toBeGreaterThan(0);
    expect(db.hits).toEqual([]);
    if (t.databaseUrl) {
      const dump = scanPgDump(t.databaseUrl, CANARY);
      if (dump) {
        expect(dump.bytes).toBeGreaterThan(0);
        expect(dump.hits).toEqual([]);
      }
    }

    const files = scanFiles(t.env.DATA_DIR!, CANARY);
    if (state.mediaId) expect(files.bytes).toBeGreaterThan(FILE_BYTES);
    expect(files.hits).toEqual([]);

    expect(logLines.some((l) => l.includes('/api/auth/register'))).toBe(true);
    expect(scanLines(logLines, CANARY)).toEqual([]);

    // The scanners do find the canary, raw or only base64-encoded, where it is.
    const control = fresh('orbital-control-');
    writeFileSync(join(control, 'plain'), `x${CANARY}`);
    writeFileSync(join(control, 'b64'), Buffer.from(`ab${CANARY}`).toString('base64'));
    expect(scanFiles(control, CANARY).hits).toHaveLength(2);
    expect(scanLines([JSON.stringify({ v: Buffer.from(`${CANARY}!`).toString('base64') })], CANARY)).toHaveLength(1);
  });
});
