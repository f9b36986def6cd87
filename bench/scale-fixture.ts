// What bench:scale and bench:storm share: the server as `npm start` runs it (WORKERS=n, Postgres),
// ORBITS orbits of two members seeded straight into the database, and an open-loop write load
// through HTTP (threads, replies, relay messages in turn).
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { parseConfig } from '../src/config';
import { openNodePostgres } from '../src/adapters/db-node-postgres';
import { migrate } from '../src/db/migrate';
import { createGroup } from '../src/domain/groups';
import { signAccessToken } from '../src/domain/tokens';
import { cpuMs, startAsNpmStart } from './npm-start';
import { BENCH_SECRET } from './threads-fixture';

const b64 = (n: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString('base64');

export interface Server {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

/** The server as `npm start` runs it (built dist/, default log level, log to a file), with WORKERS=n. */
/**
 * `givenDir`: the caller's data dir, kept (a restart reuses it; else a new one, removed on stop).
 * `port`: the one a restart takes over (else a free one).
 */
export async function startServer(workers: number, databaseUrl: string, givenDir?: string, port?: string): Promise<Server & { cpuMs(): number }> {
  const dataDir = givenDir ?? mkdtempSync(join(tmpdir(), 'orbital-scale-'));
  // Rate limits off: 10,000 sockets and the write load all come from this machine's one address.
  const server = await startAsNpmStart(
    { WORKERS: String(workers), DATABASE_URL: databaseUrl, DATA_DIR: dataDir, JWT_SECRET: BENCH_SECRET, RATE_LIMIT: 'off', MAX_OWNED_GROUPS: '100000', ...(port ? { PORT: port } : {}) },
    // BENCH_CPU_PROF=<dir>: each server process writes a .cpuprofile there when it exits.
    { timeoutMs: 120_000, nodeArgs: [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []), ...(process.env.BENCH_NODE_IMPORT ? ['--import', process.env.BENCH_NODE_IMPORT] : [])] },
  );
  // Every worker listening: the primary hands connections out in turn, so n answers in a row.
  await new Promise((r) => setTimeout(r, 2000));
  return {
    url: server.url,
    proc: server.child,
    cpuMs: () => cpuMs(server.child.pid!),
    async stop() {
      await server.stop();
      if (!givenDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** `orbitCount` orbits; orbit i is owned by user i, with user i+1 as its second member. */
export async function seed(url: string, orbitCount: number) {
  const config = parseConfig({ JWT_SECRET: BENCH_SECRET, MAX_OWNED_GROUPS: '100000' });
  const handle = openNodePostgres(url, 8);
  await migrate(handle.db);
  const users: Array<{ id: string; token: string }> = [];
  for (let i = 0; i < orbitCount; i++) {
    const id = randomUUID();
    const sessionId = randomUUID();
    await handle.pool.query(`insert into users (id, username, username_lower, password_hash, public_key) values ($1, $2, $2, 'x', '{}')`, [id, `s${i}`]);
    await handle.pool.query(`insert into sessions (id, user_id, expires_at) values ($1, $2, now() + interval '1 day')`, [sessionId, id]);
    users.push({ id, token: await signAccessToken(config.jwtSecret, id, sessionId, new Date()) });
  }
  const orbits: Array<{ id: string; owner: string; member: string }> = [];
  for (let i = 0; i < orbitCount; i++) {
    const owner = users[i]!;
    const member = users[(i + 1) % orbitCount]!;
    const { group } = await handle.db.transaction((tx) => createGroup(tx, config, { userId: owner.id, encryptedName: b64(24), encryptedGroupKey: b64(64), now: new Date() }));
    // A member since the orbit began: its sockets replay from seq 1 like the owner's.
    await handle.pool.query(`insert into group_members (group_id, user_id, role, joined_at) select id, $2, 'member', created_at from groups where id = $1`, [group.id, member.id]);
    await handle.pool.query(`update groups set member_count = member_count + 1 where id = $1`, [group.id]);
    orbits.push({ id: group.id, owner: owner.token, member: member.token });
  }
  return { orbits, close: () => handle.close() };
}

/** Open-loop writes at WRITES_PER_S for SECONDS over random orbits: a third each threads, replies, messages. */
export async function writeLoad(base: string, orbits: Array<{ id: string; owner: string }>, perSecond: number, seconds: number) {
  const pool = new Pool(base, { connections: 32 });
  const threads = new Map<string, string>();
  let ok = 0;
  let failed = 0;
  const post = async (path: string, token: string, body: unknown) => {
    const res = await pool.request({ method: 'POST', path, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`${res.statusCode} ${text.slice(0, 200)}`);
    return JSON.parse(text);
  };
  const one = async (n: number) => {
    const orbit = orbits[Math.floor(Math.random() * orbits.length)]!;
    try {
      const thread = threads.get(orbit.id);
      if (n % 3 === 0 || !thread) {
        const created = await post('/api/threads', orbit.owner, { group_id: orbit.id, key_epoch: 1, encrypted_title: b64(24), encrypted_body: b64(200) });
        threads.set(orbit.id, created.id);
      } else if (n % 3 === 1) await post(`/api/threads/${thread}/replies`, orbit.owner, { key_epoch: 1, encrypted_body: b64(200) });
      else await post(`/api/groups/${orbit.id}/messages`, orbit.owner, { key_epoch: 1, envelope: b64(200) });
      ok++;
    } catch (err) {
      if (failed++ < 3) console.error('write failed:', err instanceof Error ? err.message : err);
    }
  };
  const inFlight: Promise<void>[] = [];
  const started = performance.now();
  for (let n = 0; n < perSecond * seconds; n++) {
    const due = started + (n * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(one(n));
  }
  await Promise.all(inFlight);
  await pool.close();
  return { ok, failed, seconds: (performance.now() - started) / 1000 };
}

