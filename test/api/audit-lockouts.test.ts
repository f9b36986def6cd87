// The audit trail beyond test/api/audit.test.ts: the network of an IPv4-mapped address, each
// lockout (a (username, address) pair, a signed-in account, an address, a joiner) once per window
// with its network, a refresh token replayed after its rotation, and the cleanup's count under a
// shorter AUDIT_RETENTION_DAYS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '#target';
import { runCleanup } from '../../src/domain/cleanup';
import { expectStatus, post, registerUser, unique, type TestUser } from '../support/api';
import { join } from '../support/orbits';
import type { Target } from '../support/types';

let t: Target;
beforeAll(async () => {
  t = await createTarget({ env: { RATE_LIMIT: 'on', AUDIT_RETENTION_DAYS: '30' } });
});
afterAll(() => t?.close());

interface Row {
  action: string;
  via: string;
  actor_id: string | null;
  target_id: string | null;
  group_id: string | null;
  detail: string | null;
  address: string | null;
  text: string;
}

/**
 * A fresh client address in TEST-NET-2, and the /24 kept of it: a network of its own for each test
 * (so none shares a budget or a lockout row), from a random start (a run against a database an
 * earlier run used), never 198.51.100.0/24 (test/api/audit.test.ts's).
 */
let third = Math.floor(Math.random() * 150);
const net = () => {
  third = (third + 1) % 250;
  if (third === 100) third++;
  return { ip: `198.51.${third}.${(third % 200) + 20}`, kept: `198.51.${third}.0/24` };
};

const rowsOf = (action: string, id: string) =>
  t.sql<Row>(
    `select a.action, a.via, a.actor_id, a.target_id, a.group_id, a.detail, a.address, a::text as text from audit_events a
      where a.action = $1 and (a.actor_id = $2 or a.target_id = $2) order by a.id`,
    [action, id],
  );

async function oneRow(action: string, id: string): Promise<Row> {
  const rows = await rowsOf(action, id);
  expect(rows, `${action} rows of ${id}`).toHaveLength(1);
  return rows[0]!;
}

/** No password, token or username anywhere in the row. */
function expectClean(row: Row, user: TestUser) {
  for (const secret of [user.username, user.password, user.access, user.refresh]) expect(row.text.toLowerCase()).not.toContain(secret.toLowerCase());
}

const user = () => registerUser(t, { ip: net().ip });

it('an IPv4-mapped IPv6 address is kept as its IPv4 /24', async () => {
  const mapped = await registerUser(t, { ip: '::ffff:192.0.2.99' });
  expect((await oneRow('account.created', mapped.id)).address).toBe('192.0.2.0/24');
});

describe('rate_limit.lockout', () => {
  it('a (username, address) pair: one row however many attempts are refused, the right password included', async () => {
    const erin = await user();
    const { ip, kept } = net();
    const login = (password: string) => t.fetch('/api/auth/login', { ...post({ username: erin.username, password }), ip });
    for (let i = 0; i < 10; i++) expect((await login(`wrong ${i}`)).status).toBe(401);
    expect(await rowsOf('rate_limit.lockout', erin.id)).toHaveLength(0);
    for (let i = 0; i < 3; i++) expect((await login(erin.password)).status).toBe(429);
    const row = await oneRow('rate_limit.lockout', erin.id);
    expect(row).toMatchObject({ via: 'api', actor_id: null, target_id: erin.id, detail: 'passwordUserIp', address: kept });
    expectClean(row, erin);
  });

  it('a lockout in the next window gets its own row, even within a window\'s length of the last one', async () => {
    const gina = await user();
    const { ip } = net();
    const login = (password: string) => t.fetch('/api/auth/login', { ...post({ username: gina.username, password }), ip });
    const lockOut = async () => {
      for (let i = 0; i < 10; i++) expect((await login(`wrong ${i}`)).status).toBe(401);
      expect((await login('wrong again')).status).toBe(429);
    };
    await lockOut();
    expect(await rowsOf('rate_limit.lockout', gina.id)).toHaveLength(1);
    // The pair's window ends now (as if its 15 minutes had passed): the next attempts count anew.
    await t.sql(`update rate_limits set window_end = now() - interval '1 second' where key like $1`, [`pw:%${gina.username.toLowerCase()}%`]);
    await lockOut();
    expect(await rowsOf('rate_limit.lockout', gina.id)).toHaveLength(2);
  });

  it('a signed-in account guessing its own password: the account budget, with the caller and its network', async () => {
    const frank = await user();
    const { ip, kept } = net();
    const del = () => t.fetch('/api/users/me', { ...post({ password: 'not mine' }, frank.auth, 'DELETE'), ip });
    for (let i = 0; i < 10; i++) expect((await del()).status).toBe(401);
    expect((await del()).status).toBe(429);
    const row = await oneRow('rate_limit.lockout', frank.id);
    expect(row).toMatchObject({ actor_id: frank.id, target_id: frank.id, detail: 'passwordAccount', address: kept });
    expectClean(row, frank);
  });

  it('failed joins past the per-user budget: the joiner and its network', async () => {
    const gina = await user();
    const { ip, kept } = net();
    for (let i = 0; i < 20; i++) expect((await join(t, gina, `Zz${String(i).padStart(6, '0')}`, ip)).status).toBe(404);
    expect((await join(t, gina, 'ZzZzZzZz', ip)).status).toBe(429);
    expect((await join(t, gina, 'ZzZzZzZy', ip)).status).toBe(429);
    expect(await oneRow('rate_limit.lockout', gina.id)).toMatchObject({ actor_id: gina.id, target_id: null, detail: 'joinUser', address: kept });
  });

  it('an address past its login budget (guessing many usernames): the network only', async () => {
    const { ip, kept } = net();
    // The address's 50 failures so far, as earlier guesses would have left them.
    await t.sql(`insert into rate_limits (key, window_start, window_end, hits) values ($1, now(), now() + interval '15 minutes', 50)`, [`pw:ip:${ip}`]);
    for (let i = 0; i < 2; i++) expect((await t.fetch('/api/auth/login', { ...post({ username: unique(), password: 'a guess' }), ip })).status).toBe(429);
    const rows = await t.sql<Row>(`select * from audit_events where action = 'rate_limit.lockout' and address = $1`, [kept]);
    expect(rows).toEqual([expect.objectContaining({ via: 'api', actor_id: null, target_id: null, group_id: null, detail: 'passwordIp' })]);
  });
});

it('a rotated refresh token replayed past its grace ends the session: sessions.revoked with no actor', async () => {
  const hank = await user();
  const refresh = (ip?: string) => t.fetch('/api/auth/refresh', { ...post({ refresh_token: hank.refresh }), ip });
  await expectStatus(await refresh(), 200);
  // The rotation a minute ago, as if the replay came after the 30 s grace.
  await t.sql(`update refresh_tokens set rotated_at = rotated_at - interval '1 minute' where rotated_at is not null and session_id in (select id from sessions where user_id = $1)`, [hank.id]);
  const { ip, kept } = net();
  expect((await refresh(ip)).status).toBe(401);
  expect((await refresh(ip)).status).toBe(401);
  const row = await oneRow('sessions.revoked', hank.id);
  expect(row).toMatchObject({ via: 'api', actor_id: null, target_id: hank.id, detail: 'refresh_reuse', address: kept });
  expectClean(row, hank);
});

it('the cleanup removes rows older than AUDIT_RETENTION_DAYS (30 here), keeps newer ones and reports how many went', async () => {
  const marker = crypto.randomUUID();
  const day = 86_400_000;
  const now = Date.now();
  for (const ageDays of [31, 45, 29]) {
    await t.sql(`insert into audit_events (action, via, target_id, at) values ('account.created', 'api', $1, $2)`, [marker, new Date(now - ageDays * day).toISOString()]);
  }
  // Other files may share this database (and age rows of their own): count what is due first.
  const [due] = await t.sql<{ n: string }>(`select count(*) as n from audit_events where at < $1`, [new Date(now - 30 * day).toISOString()]);
  expect(Number(due!.n)).toBeGreaterThanOrEqual(2);
  const report = await t.withDeps((deps) => runCleanup(deps, { now: new Date(now) }));
  expect(report.audit_events).toBe(Number(due!.n));
  const left = await t.sql<{ at: Date | string }>('select at from audit_events where target_id = $1', [marker]);
  expect(left.map((r) => Math.round((now - new Date(r.at).getTime()) / day))).toEqual([29]);
});
