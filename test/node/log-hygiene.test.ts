// What the server writes to its log during a run of typical traffic: one structured JSON line per
// request (request id, route, status, duration), and never a token, ticket, password, invite
// code, ciphertext or envelope — nor the ids that would say who did what when. The server's
// own JSON logger writes into a recorder; console output of the process is searched as well.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { jsonLogger } from '../../src/adapters/logger-json';
import { b64, bearer, createInvite, createOrbit, deliverKey, expectError, expectStatus, joinOrbit, json, post, registerUser, type TestUser } from '../support/api';
import { newReply, newThread } from '../support/content';
import { openLive } from '../support/live';
import { uploadFile } from '../support/media';
import { createTarget } from '../support/node-target';
import { TEST_ENV, type Target } from '../support/types';

let t: Target;
const lines: string[] = [];
const consoleLines: string[] = [];
/** Everything sent or received that must never reach a log. */
const secrets = new Map<string, string>();
/** Ids that would tell who did what in which orbit. */
const ids = new Map<string, string>();
let requestsSent = 0;

const keep = (what: string, value: string) => {
  secrets.set(value, what);
  return value;
};
const cipher = (what: string, bytes = 48) => keep(what, b64(bytes));
const keepUser = (u: TestUser, name: string) => {
  keep(`${name} password`, u.password);
  keep(`${name} access token`, u.access);
  keep(`${name} refresh token`, u.refresh);
  keep(`${name} public key`, u.publicKey.x!);
  ids.set(u.id, `${name} id`);
  return u;
};
const keepAuth = (what: string, body: { access_token: string; refresh_token: string }) => {
  keep(`${what} access token`, body.access_token);
  keep(`${what} refresh token`, body.refresh_token);
};

beforeAll(async () => {
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void consoleLines.push(args.map(String).join(' ')));
  }
  t = await createTarget({ logger: jsonLogger('debug', (line) => lines.push(line)) });
  const fetch = t.fetch.bind(t);
  t.fetch = (path, init) => ((requestsSent += 1), fetch(path, init));
  await typicalTraffic();
}, 120_000);
afterAll(async () => {
  vi.restoreAllMocks();
  await t?.close();
});

async function typicalTraffic() {
  // Accounts and sessions.
  const alice = keepUser(await registerUser(t), 'alice');
  const bob = keepUser(await registerUser(t), 'bob');
  const login = await json(await expectStatus(await t.fetch('/api/auth/login', post({ username: alice.username, password: alice.password })), 200));
  keepAuth('login', login);
  await expectError(await t.fetch('/api/auth/login', post({ username: alice.username, password: keep('wrong password', 'not her password at all') })), 401, 'INVALID_CREDENTIALS');
  const refreshed = await json(await expectStatus(await t.fetch('/api/auth/refresh', post({ refresh_token: login.refresh_token })), 200));
  keepAuth('refresh', refreshed);
  await expectStatus(await t.fetch('/api/auth/logout', post({ refresh_token: refreshed.refresh_token })), 204);
  const newPassword = keep('new password', 'a brand new passphrase 42');
  await expectStatus(await t.fetch('/api/users/me/password', post({ current_password: bob.password, new_password: newPassword }, bob.auth, 'PUT')), 204);
  await expectStatus(await t.fetch('/api/users/me/key-backup', post({ backup: cipher('key backup', 512), kdf: { salt: cipher('kdf salt', 16) } }, alice.auth, 'PUT')), 204);
  await expectStatus(await t.fetch('/api/users/me/key-backup', { headers: alice.auth }), 200);
  await expectError(await t.fetch('/api/users/me', { headers: bearer(keep('forged token', 'LEAKCHECK.eyJmb3JnZWQiOnRydWV9.c2lnbmF0dXJl')) }), 401, 'UNAUTHENTICATED');

  // An orbit, an invite, a join, a key delivery.
  const created = await json(
    await expectStatus(await t.fetch('/api/groups', post({ encrypted_name: cipher('orbit name'), encrypted_group_key: cipher('orbit key', 256), key_check: cipher('key check', 16) }, alice.auth)), 201),
  );
  const groupId = created.group.id as string;
  ids.set(groupId, 'orbit id');
  keep('first invite code', created.invite.code);
  const code = keep('invite code', await createInvite(t, alice, groupId));
  await joinOrbit(t, bob, code);
  await expectError(await t.fetch('/api/groups/join', post({ invite_code: keep('wrong invite code', 'Zq8wXv2K') }, bob.auth)), 404, 'NOT_FOUND');
  await expectStatus(
    await t.fetch(`/api/groups/${groupId}/members/${bob.id}/keys`, post({ keys: [{ key_epoch: 1, encrypted_group_key: cipher('wrapped key for bob', 256) }] }, alice.auth, 'PUT')),
    204,
  );

  // Content: a thread, a reply, messages for everyone and for one member.
  const thread = await newThread(t, alice, groupId, { encrypted_title: cipher('thread title'), encrypted_body: cipher('thread body', 400) });
  ids.set(thread.id, 'thread id');
  const reply = await newReply(t, bob, thread.id, { encrypted_body: cipher('reply body', 200) });
  ids.set(reply.id, 'reply id');
  await expectStatus(await t.fetch(`/api/groups/${groupId}/messages`, post({ key_epoch: 1, envelope: cipher('envelope', 300) }, alice.auth)), 201);
  await expectStatus(
    await t.fetch(`/api/groups/${groupId}/messages`, post({ recipients: [{ user_id: bob.id, envelope: cipher('recipient envelope', 300) }] }, alice.auth)),
    201,
  );
  await expectStatus(await t.fetch(`/api/groups/${groupId}/messages`, { headers: bob.auth }), 200);
  await expectError(await t.fetch('/api/threads', post({ group_id: groupId, key_epoch: 1, encrypted_title: keep('bad ciphertext', 'NOT*BASE64*SECRET'), encrypted_body: b64(8) }, alice.auth)), 400, 'VALIDATION_ERROR');

  // Media: upload, download, a range.
  const { mediaId, file } = await uploadFile(t, alice, groupId, 3000, {
    encrypted_metadata: cipher('media metadata', 200),
    encryption_iv: keep('media iv', b64(8)),
  });
  ids.set(mediaId, 'media id');
  keep('media bytes (base64)', Buffer.from(file.subarray(0, 48)).toString('base64'));
  keep('media bytes (hex)', Buffer.from(file.subarray(0, 24)).toString('hex'));
  await expectStatus(await t.fetch(`/api/media/${mediaId}/download`, { headers: bob.auth }), 200);
  await expectStatus(await t.fetch(`/api/media/${mediaId}/download`, { headers: { ...bob.auth, range: 'bytes=0-99' } }), 206);

  // The live socket, by ticket and by header.
  const { ticket } = await json(await expectStatus(await t.fetch(`/api/groups/${groupId}/live/ticket`, { method: 'POST', headers: bob.auth }), 200));
  keep('live ticket', ticket);
  const byTicket = await openLive(t, `/api/groups/${groupId}/live?ticket=${encodeURIComponent(ticket)}&after_seq=0`);
  const byHeader = await openLive(t, `/api/groups/${groupId}/live`, alice.auth);
  byTicket.socket.close();
  byHeader.socket.close();

  // A failure nobody planned for: the file's blob vanished from the disk (500 INTERNAL, logged).
  rmSync(join(t.env.DATA_DIR!, 'blobs', 'objects', 'media', groupId, mediaId), { recursive: true, force: true });
  await expectError(await t.fetch(`/api/media/${mediaId}/download`, { headers: bob.auth }), 500, 'INTERNAL');
}

describe('the log of a run of typical traffic', () => {
  it('is one JSON object per line, with a line per request carrying request id, route, status and duration', () => {
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const entry of parsed) {
      expect(typeof entry.time).toBe('string');
      expect(typeof entry.level).toBe('string');
    }
    const requests = parsed.filter((e) => e.msg === 'request');
    expect(requests.length).toBeGreaterThanOrEqual(requestsSent);
    for (const entry of requests) {
      expect(entry).toEqual(
        expect.objectContaining({ request_id: expect.any(String), route: expect.stringMatching(/^\//), status: expect.any(Number), duration_ms: expect.any(Number) }),
      );
    }
    // Routes are templates (the ids are never in them), and the planned failure is there.
    expect(requests.map((e) => e.route)).toContain('/api/media/:mediaId/download');
    expect(requests.some((e) => e.status === 500)).toBe(true);
    expect(parsed.some((e) => e.level === 'error' && e.msg === 'unhandled error')).toBe(true);
  });

  it('holds no token, ticket, password, invite code, ciphertext or envelope, nor the JWT secret', () => {
    expect(secrets.size).toBeGreaterThan(30);
    secrets.set(TEST_ENV.JWT_SECRET!, 'JWT secret');
    const found = (text: string[]) =>
      [...secrets].flatMap(([value, what]) => {
        // A token's parts are searched too: a log cutting a token short still leaks its signature.
        const parts = value.split('.').filter((p) => p.length >= 16);
        return text.some((l) => l.includes(value) || parts.some((p) => l.includes(p))) ? [what] : [];
      });
    expect(found(lines), 'in the log').toEqual([]);
    expect(found(consoleLines), 'on the console').toEqual([]);
  });

  it('holds no user, orbit, thread, reply or media id: who did what, when, is not kept', () => {
    const found = [...ids].filter(([id]) => [...lines, ...consoleLines].some((l) => l.includes(id))).map(([, what]) => what);
    expect(found).toEqual([]);
  });
});
