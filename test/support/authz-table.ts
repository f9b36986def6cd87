// The authorization matrix: one row per route the app serves, one column per kind of caller, and
// the status (or error code) the contract gives that caller. test/api/authz-matrix.test.ts sends
// every cell and fails when a route has no row, so a new route cannot ship without its rules.
//
// Rows build their fixtures through the API (shared world for reads, fresh records where a
// successful call changes or deletes them) and send a valid body, so a cell's answer is about
// who asks, never about a malformed request. Columns run in ROLES order, the owner last: a
// destructive call succeeds only in the last column that is allowed it.
import type { ErrorCode } from '../../src/domain/errors';
import {
  b64,
  bearer,
  createInvite,
  createOrbit,
  deliverKey,
  expectStatus,
  joinOrbit,
  json,
  post,
  publicKey,
  registerUser,
  unique,
  type TestOrbit,
  type TestUser,
} from './api';
import { newReply, newThread } from './content';
import { putChunk, randomFile, startBody, startUpload, uploadFile } from './media';
import { claimsOf, signToken } from './tokens';
import type { Target } from './types';

/** Token columns (the owner's identity, spoiled) and role columns (a valid token of that user). */
export const ROLES = ['none', 'tampered', 'expired', 'nonMember', 'pending', 'member', 'owner'] as const;
export type Role = (typeof ROLES)[number];
export type UserRole = Exclude<Role, 'none' | 'tampered' | 'expired'>;
export const isTokenColumn = (role: Role) => role === 'none' || role === 'tampered' || role === 'expired';

/** A success status, or the error code (which implies its status). */
export type Outcome = number | ErrorCode;

export interface World {
  t: Target;
  users: Record<UserRole, TestUser>;
  /** Logs in for the auth rows (a user none of the other rows changes). */
  spare: TestUser;
  /** The owner's orbit: `member` holds the key, `pending` joined without it, `nonMember` is outside (in an orbit of its own). */
  orbit: TestOrbit;
  /** The outsider's own orbit. */
  elsewhere: TestOrbit;
  thread: { id: string };
  reply: { id: string };
  /** A completed file the owner uploaded. */
  mediaId: string;
}

/** One request of a cell; `as` replaces the column's user (a fresh account for self-destructive calls). */
export interface Call {
  method?: string;
  path: string;
  body?: unknown;
  raw?: { body: Uint8Array; contentType: string };
  headers?: Record<string, string>;
  /** A WebSocket upgrade (101 when it opens). */
  socket?: boolean;
  as?: TestUser;
}

export interface Cell<F> {
  w: World;
  role: Role;
  /** Whose ids and body the call uses: the column's user, or the owner for token columns. */
  as: TestUser;
  fixture: F;
  /** A new account standing in this column's role (the owner's account for token columns). */
  fresh(): Promise<TestUser>;
}

export interface Row<F = any> {
  /** `METHOD /path/{param}` as in the OpenAPI document. */
  route: string;
  /** Public routes ignore tokens: every column expects the same answer. */
  public?: boolean;
  expect: Record<Role, Outcome>;
  /** Records the row needs; made once per row, or once per column with `perColumn`. */
  setup?: (w: World) => Promise<F>;
  perColumn?: boolean;
  call(cell: Cell<F>): Call | Promise<Call>;
}

const TOKENS = { none: 'UNAUTHENTICATED', tampered: 'UNAUTHENTICATED', expired: 'TOKEN_EXPIRED' } as const;
const same = (ok: Outcome) => ({ nonMember: ok, pending: ok, member: ok, owner: ok });

/** Open to anyone: tokens, good or bad, change nothing. */
const open = (ok: Outcome) => ({ none: ok, tampered: ok, expired: ok, ...same(ok) });
/** About the caller's own account: any signed-in user. */
const self = (ok: Outcome) => ({ ...TOKENS, ...same(ok) });
/** Reading an orbit or its content: every member, pending ones included. */
const read = (ok: Outcome = 200) => ({ ...TOKENS, nonMember: 'NOT_FOUND', pending: ok, member: ok, owner: ok }) as const;
/** Writing into an orbit: members holding the key. */
const write = (ok: Outcome) => ({ ...TOKENS, nonMember: 'NOT_FOUND', pending: 'KEY_PENDING', member: ok, owner: ok }) as const;
/** The owner's business (members of any kind are refused by role). */
const ownerOnly = (ok: Outcome) => ({ ...TOKENS, nonMember: 'NOT_FOUND', pending: 'FORBIDDEN', member: 'FORBIDDEN', owner: ok }) as const;
/** A record the owner wrote: its author or the owner deletes it; pending members may not write at all. */
const authorOrOwner = (ok: Outcome) => ({ ...TOKENS, nonMember: 'NOT_FOUND', pending: 'KEY_PENDING', member: 'FORBIDDEN', owner: ok }) as const;
/** An upload or file the owner made: only its uploader (or, for deletions, the owner) acts on it. */
const uploaderOnly = ownerOnly;

const PASSWORD = 'correct horse battery staple';

export async function loginTokens(t: Target, user: { username: string; password: string }) {
  const res = await t.fetch('/api/auth/login', post({ username: user.username, password: user.password }));
  await expectStatus(res, 200);
  const body = await json(res);
  return { access: body.access_token as string, refresh: body.refresh_token as string };
}

export async function buildWorld(t: Target): Promise<World> {
  const [owner, member, pending, nonMember, spare] = (await Promise.all(Array.from({ length: 5 }, () => registerUser(t)))) as [TestUser, TestUser, TestUser, TestUser, TestUser];
  const orbit = await createOrbit(t, owner);
  // The outsider belongs to an orbit of its own: a membership anywhere must not open this one.
  const elsewhere = await createOrbit(t, nonMember);
  await joinOrbit(t, member, await createInvite(t, owner, orbit.id));
  await deliverKey(t, owner, orbit.id, member.id);
  await joinOrbit(t, pending, await createInvite(t, owner, orbit.id));
  const thread = await newThread(t, owner, orbit.id);
  const reply = await newReply(t, owner, thread.id);
  const { mediaId } = await uploadFile(t, owner, orbit.id, 1000);
  return { t, users: { owner, member, pending, nonMember }, spare, orbit, elsewhere, thread, reply, mediaId };
}

/** A new account in `role` toward the world's orbit (owner: of an orbit of its own). */
export async function freshUser(w: World, role: UserRole): Promise<TestUser> {
  const user = await registerUser(w.t);
  if (role === 'owner') await createOrbit(w.t, user);
  if (role === 'member' || role === 'pending') await joinOrbit(w.t, user, await createInvite(w.t, w.users.owner, w.orbit.id));
  if (role === 'member') await deliverKey(w.t, w.users.owner, w.orbit.id, user.id);
  return user;
}

/** An orbit of the world's owner where the world's member holds the key and its pending member joined. */
async function freshOrbit(w: World): Promise<TestOrbit> {
  const { t, users } = w;
  const orbit = await createOrbit(t, users.owner);
  await joinOrbit(t, users.member, await createInvite(t, users.owner, orbit.id));
  await deliverKey(t, users.owner, orbit.id, users.member.id);
  await joinOrbit(t, users.pending, await createInvite(t, users.owner, orbit.id));
  return orbit;
}

/** A user who joined the world's orbit and holds no key. */
const joinedUser = (w: World) => freshUser(w, 'pending');

const octets = (size: number) => ({ body: randomFile(size), contentType: 'application/octet-stream' });
const g = (w: World) => w.orbit.id;

export const AUTHZ_ROWS: Row[] = [
  // ---------- service and docs ----------
  { route: 'GET /health', public: true, expect: open(200), call: () => ({ path: '/health' }) },
  { route: 'GET /ready', public: true, expect: open(200), call: () => ({ path: '/ready' }) },
  { route: 'GET /api/config', public: true, expect: open(200), call: () => ({ path: '/api/config' }) },
  { route: 'GET /openapi.json', public: true, expect: open(200), call: () => ({ path: '/openapi.json' }) },
  { route: 'GET /docs', public: true, expect: open(200), call: () => ({ path: '/docs' }) },
  { route: 'GET /docs/init.js', public: true, expect: open(200), call: () => ({ path: '/docs/init.js' }) },
  { route: 'GET /docs/assets/{file}', public: true, expect: open(200), call: () => ({ path: '/docs/assets/swagger-ui.css' }) },
  // Off in tests (METRICS unset): a 404 for every caller; its guards: test/node/metrics.test.ts.
  { route: 'GET /metrics', public: true, expect: open('NOT_FOUND'), call: () => ({ path: '/metrics' }) },

  // ---------- accounts and sessions ----------
  {
    route: 'POST /api/auth/register',
    public: true,
    expect: open(201),
    call: () => ({ method: 'POST', path: '/api/auth/register', body: { username: unique(), password: PASSWORD, public_key: publicKey() } }),
  },
  {
    route: 'POST /api/auth/login',
    public: true,
    expect: open(200),
    call: ({ w }) => ({ method: 'POST', path: '/api/auth/login', body: { username: w.spare.username, password: w.spare.password } }),
  },
  {
    route: 'POST /api/auth/refresh',
    public: true,
    expect: open(200),
    perColumn: true,
    setup: (w) => loginTokens(w.t, w.spare),
    call: ({ fixture }) => ({ method: 'POST', path: '/api/auth/refresh', body: { refresh_token: fixture.refresh } }),
  },
  {
    route: 'POST /api/auth/logout',
    public: true,
    expect: open(204),
    perColumn: true,
    setup: (w) => loginTokens(w.t, w.spare),
    call: ({ fixture }) => ({ method: 'POST', path: '/api/auth/logout', body: { refresh_token: fixture.refresh } }),
  },
  { route: 'GET /api/users/me', expect: self(200), call: () => ({ path: '/api/users/me' }) },
  {
    route: 'DELETE /api/users/me',
    expect: self(204),
    call: async (cell) => {
      const me = await cell.fresh();
      return { method: 'DELETE', path: '/api/users/me', body: { password: me.password }, as: me };
    },
  },
  {
    route: 'PUT /api/users/me/password',
    expect: self(204),
    call: async (cell) => {
      const me = await cell.fresh();
      return { method: 'PUT', path: '/api/users/me/password', body: { current_password: me.password, new_password: `${PASSWORD} 2` }, as: me };
    },
  },
  { route: 'GET /api/users/me/sessions', expect: self(200), call: () => ({ path: '/api/users/me/sessions' }) },
  { route: 'DELETE /api/users/me/sessions', expect: self(204), call: () => ({ method: 'DELETE', path: '/api/users/me/sessions' }) },
  {
    route: 'DELETE /api/users/me/sessions/{sessionId}',
    expect: self(204),
    call: async ({ w, as }) => {
      // Another session of the same account (its own device login).
      const other = await loginTokens(w.t, as);
      return { method: 'DELETE', path: `/api/users/me/sessions/${claimsOf(other.access).sid}` };
    },
  },
  {
    route: 'PUT /api/users/me/public-key',
    expect: self(204),
    call: async (cell) => ({ method: 'PUT', path: '/api/users/me/public-key', body: { public_key: publicKey() }, as: await cell.fresh() }),
  },
  {
    route: 'PUT /api/users/me/key-backup',
    expect: self(204),
    call: () => ({ method: 'PUT', path: '/api/users/me/key-backup', body: { backup: b64(256), kdf: { name: 'argon2id', m: 19456, t: 2 } } }),
  },
  {
    route: 'GET /api/users/me/key-backup',
    expect: self(200),
    call: async ({ w, as }) => {
      await expectStatus(await w.t.fetch('/api/users/me/key-backup', post({ backup: b64(256), kdf: {} }, as.auth, 'PUT')), 204);
      return { path: '/api/users/me/key-backup' };
    },
  },
  // The owner's key: for co-members (the owner itself included), never for outsiders.
  { route: 'GET /api/users/{userId}/public-key', expect: read(200), call: ({ w }) => ({ path: `/api/users/${w.users.owner.id}/public-key` }) },

  // ---------- orbits, members, keys, invites, quota ----------
  {
    route: 'POST /api/groups',
    expect: self(201),
    call: () => ({ method: 'POST', path: '/api/groups', body: { encrypted_name: b64(24), encrypted_group_key: b64(256) } }),
  },
  { route: 'GET /api/groups', expect: self(200), call: () => ({ path: '/api/groups' }) },
  {
    route: 'POST /api/groups/join',
    // Outsiders join (a new account each time); members already are.
    expect: { ...TOKENS, nonMember: 200, pending: 'ALREADY_MEMBER', member: 'ALREADY_MEMBER', owner: 'ALREADY_MEMBER' },
    perColumn: true,
    setup: (w) => createInvite(w.t, w.users.owner, w.orbit.id),
    call: async (cell) => ({
      method: 'POST',
      path: '/api/groups/join',
      body: { invite_code: cell.fixture },
      as: cell.role === 'nonMember' ? await cell.fresh() : undefined,
    }),
  },
  { route: 'GET /api/groups/{groupId}', expect: read(200), call: ({ w }) => ({ path: `/api/groups/${g(w)}` }) },
  {
    route: 'PATCH /api/groups/{groupId}',
    expect: ownerOnly(200),
    call: ({ w }) => ({ method: 'PATCH', path: `/api/groups/${g(w)}`, body: { encrypted_name: b64(24) } }),
  },
  {
    route: 'PUT /api/groups/{groupId}/owner',
    expect: ownerOnly(204),
    setup: freshOrbit,
    call: ({ w, fixture }) => ({ method: 'PUT', path: `/api/groups/${fixture.id}/owner`, body: { user_id: w.users.member.id } }),
  },
  { route: 'GET /api/groups/{groupId}/members', expect: read(200), call: ({ w }) => ({ path: `/api/groups/${g(w)}/members` }) },
  {
    route: 'DELETE /api/groups/{groupId}/members/{userId}',
    // Removing someone else (leaving is one's own business, covered by the members tests).
    expect: ownerOnly(204),
    setup: joinedUser,
    call: ({ w, fixture }) => ({ method: 'DELETE', path: `/api/groups/${g(w)}/members/${fixture.id}` }),
  },
  {
    route: 'PUT /api/groups/{groupId}/members/{userId}/keys',
    // Delivering a newcomer's key: any member holding it; a pending member only its own.
    expect: write(204),
    perColumn: true,
    setup: joinedUser,
    call: ({ w, fixture }) => ({
      method: 'PUT',
      path: `/api/groups/${g(w)}/members/${fixture.id}/keys`,
      body: { keys: [{ key_epoch: 1, encrypted_group_key: b64(256) }] },
    }),
  },
  { route: 'GET /api/groups/{groupId}/keys', expect: read(200), call: ({ w }) => ({ path: `/api/groups/${g(w)}/keys` }) },
  {
    route: 'POST /api/groups/{groupId}/keys',
    expect: ownerOnly(201),
    setup: freshOrbit,
    call: ({ w, fixture }) => ({
      method: 'POST',
      path: `/api/groups/${fixture.id}/keys`,
      body: { key_epoch: 2, keys: [w.users.owner, w.users.member].map((u) => ({ user_id: u.id, encrypted_group_key: b64(256) })) },
    }),
  },
  { route: 'POST /api/groups/{groupId}/invites', expect: ownerOnly(201), call: ({ w }) => ({ method: 'POST', path: `/api/groups/${g(w)}/invites`, body: {} }) },
  { route: 'GET /api/groups/{groupId}/invites', expect: ownerOnly(200), call: ({ w }) => ({ path: `/api/groups/${g(w)}/invites` }) },
  {
    route: 'DELETE /api/groups/{groupId}/invites/{code}',
    expect: ownerOnly(204),
    setup: (w) => createInvite(w.t, w.users.owner, w.orbit.id),
    call: ({ w, fixture }) => ({ method: 'DELETE', path: `/api/groups/${g(w)}/invites/${fixture}` }),
  },
  { route: 'GET /api/groups/{groupId}/quota', expect: read(200), call: ({ w }) => ({ path: `/api/groups/${g(w)}/quota` }) },

  // ---------- threads and replies ----------
  {
    route: 'POST /api/threads',
    expect: write(201),
    call: ({ w }) => ({ method: 'POST', path: '/api/threads', body: { group_id: g(w), key_epoch: 1, encrypted_title: b64(40), encrypted_body: b64(200) } }),
  },
  { route: 'GET /api/groups/{groupId}/threads', expect: read(200), call: ({ w }) => ({ path: `/api/groups/${g(w)}/threads` }) },
  { route: 'GET /api/threads/{threadId}', expect: read(200), call: ({ w }) => ({ path: `/api/threads/${w.thread.id}` }) },
  { route: 'PUT /api/threads/{threadId}/read', expect: write(204), call: ({ w }) => ({ method: 'PUT', path: `/api/threads/${w.thread.id}/read`, body: { seq: 1 } }) },
  {
    route: 'DELETE /api/threads/{threadId}',
    expect: authorOrOwner(204),
    setup: (w) => newThread(w.t, w.users.owner, w.orbit.id),
    call: ({ fixture }) => ({ method: 'DELETE', path: `/api/threads/${fixture.id}` }),
  },
  {
    route: 'POST /api/threads/{threadId}/replies',
    expect: write(201),
    call: ({ w }) => ({ method: 'POST', path: `/api/threads/${w.thread.id}/replies`, body: { key_epoch: 1, encrypted_body: b64(100) } }),
  },
  { route: 'GET /api/threads/{threadId}/replies', expect: read(200), call: ({ w }) => ({ path: `/api/threads/${w.thread.id}/replies` }) },
  {
    route: 'DELETE /api/replies/{replyId}',
    expect: authorOrOwner(204),
    setup: (w) => newReply(w.t, w.users.owner, w.thread.id),
    call: ({ fixture }) => ({ method: 'DELETE', path: `/api/replies/${fixture.id}` }),
  },

  // ---------- relay messages and events ----------
  {
    route: 'POST /api/groups/{groupId}/messages',
    expect: write(201),
    call: ({ w }) => ({ method: 'POST', path: `/api/groups/${g(w)}/messages`, body: { key_epoch: 1, envelope: b64(128) } }),
  },
  { route: 'GET /api/groups/{groupId}/messages', expect: read(200), call: ({ w }) => ({ path: `/api/groups/${g(w)}/messages` }) },
  { route: 'GET /api/groups/{groupId}/events', expect: read(200), call: ({ w }) => ({ path: `/api/groups/${g(w)}/events` }) },

  // ---------- media ----------
  { route: 'POST /api/media/upload', expect: write(201), call: ({ w }) => ({ method: 'POST', path: '/api/media/upload', body: startBody(g(w), 100) }) },
  {
    route: 'PUT /api/media/upload/{mediaId}/chunks/{index}',
    expect: uploaderOnly(200),
    setup: (w) => startUpload(w.t, w.users.owner, w.orbit.id, 100),
    call: ({ fixture }) => ({ method: 'PUT', path: `/api/media/upload/${fixture.media_id}/chunks/0`, raw: octets(100) }),
  },
  {
    route: 'GET /api/media/upload/{mediaId}',
    expect: uploaderOnly(200),
    setup: (w) => startUpload(w.t, w.users.owner, w.orbit.id, 100),
    call: ({ fixture }) => ({ path: `/api/media/upload/${fixture.media_id}` }),
  },
  {
    route: 'DELETE /api/media/upload/{mediaId}',
    expect: uploaderOnly(204),
    setup: (w) => startUpload(w.t, w.users.owner, w.orbit.id, 100),
    call: ({ fixture }) => ({ method: 'DELETE', path: `/api/media/upload/${fixture.media_id}` }),
  },
  { route: 'GET /api/media/uploads', expect: self(200), call: () => ({ path: '/api/media/uploads' }) },
  {
    route: 'POST /api/media/upload/complete',
    expect: uploaderOnly(201),
    setup: async (w) => {
      const started = await startUpload(w.t, w.users.owner, w.orbit.id, 100);
      await expectStatus(await putChunk(w.t, w.users.owner, started.media_id, 0, randomFile(100)), 200);
      return started;
    },
    call: ({ fixture }) => ({ method: 'POST', path: '/api/media/upload/complete', body: { media_id: fixture.media_id } }),
  },
  {
    route: 'PATCH /api/media/{mediaId}',
    expect: uploaderOnly(200),
    call: ({ w }) => ({ method: 'PATCH', path: `/api/media/${w.mediaId}`, body: { thread_id: w.thread.id } }),
  },
  {
    route: 'DELETE /api/media/{mediaId}',
    expect: uploaderOnly(204),
    setup: (w) => uploadFile(w.t, w.users.owner, w.orbit.id, 100),
    call: ({ fixture }) => ({ method: 'DELETE', path: `/api/media/${fixture.mediaId}` }),
  },
  { route: 'GET /api/media/{mediaId}/download', expect: read(200), call: ({ w }) => ({ path: `/api/media/${w.mediaId}/download` }) },
  { route: 'GET /api/media/{mediaId}/info', expect: read(200), call: ({ w }) => ({ path: `/api/media/${w.mediaId}/info` }) },
  { route: 'GET /api/groups/{groupId}/media', expect: read(200), call: ({ w }) => ({ path: `/api/groups/${g(w)}/media` }) },

  // ---------- live ----------
  { route: 'POST /api/groups/{groupId}/live/ticket', expect: read(200), call: ({ w }) => ({ method: 'POST', path: `/api/groups/${g(w)}/live/ticket` }) },
  { route: 'GET /api/groups/{groupId}/live', expect: read(101), call: ({ w }) => ({ path: `/api/groups/${g(w)}/live`, socket: true }) },
];

/** The bearer header a column sends for `user`: none, a forged one, an expired one, or the real one. */
export async function columnAuth(role: Role, user: TestUser, forgeAs: string): Promise<Record<string, string>> {
  if (role === 'none') return {};
  if (role === 'tampered') {
    // The payload names someone else; the signature is the original's.
    const [header, payload, signature] = user.access.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'));
    return bearer([header, Buffer.from(JSON.stringify({ ...claims, sub: forgeAs })).toString('base64url'), signature].join('.'));
  }
  if (role === 'expired') return bearer(await signToken({ sub: user.id, sid: claimsOf(user.access).sid, exp: Math.floor(Date.now() / 1000) - 120 }));
  return user.auth;
}
