// The server side of bench/live.bench.ts, in its own process so its RSS is its own: the real Node
// adapter (PGlite in memory, buildNodeDeps, startServer) plus a bare `ws` broadcast loop for
// comparison. Driven over IPC by the benchmark.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { parseConfig } from '../src/config';
import { openPglite } from '../src/adapters/db-pglite';
import { groupMembers, groups, sessions, users } from '../src/db/schema';
import { migrate } from '../src/db/migrate';
import { appendEvent, viewEvent, type StoredEvent } from '../src/domain/events';
import { createGroup } from '../src/domain/groups';
import { signAccessToken } from '../src/domain/tokens';
import { write } from '../src/domain/tx';
import { buildNodeDeps } from '../src/runtime/node-deps';
import { startServer } from '../src/runtime/node-server';
import { eq, sql } from 'drizzle-orm';

type Command =
  | { cmd: 'seed'; members: number }
  | { cmd: 'prepare'; groupId: string; rounds: number[] }
  | { cmd: 'publish'; groupId: string; round: number; fromWrite: boolean }
  | { cmd: 'events'; groupId: string; count: number }
  | { cmd: 'bare-send'; round: number }
  | { cmd: 'stats' }
  | { cmd: 'stop' };

const now = () => performance.timeOrigin + performance.now();
const PAD = 'x'.repeat(160); // an event of a typical size (~300 bytes on the wire)

const env = {
  JWT_SECRET: 'orbital-bench-secret-0123456789-abcdefghijklmnop',
  RATE_LIMIT: 'off',
  LOG_LEVEL: 'error',
  MAX_MEMBERS: '100000',
  DATA_DIR: mkdtempSync(join(tmpdir(), 'orbital-bench-')),
};
const config = parseConfig(env);
const database = await openPglite();
await migrate(database.db);
const deps = await buildNodeDeps({ config, db: database.db });
const server = await startServer(deps, 0, '127.0.0.1');

const bare = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
await new Promise((r) => bare.once('listening', r));
const bareClients = new Set<WebSocket>();
bare.on('connection', (ws) => {
  bareClients.add(ws);
  ws.on('close', () => bareClients.delete(ws));
});

/** An orbit with `members` members (besides its owner), each with a session and an access token. */
async function seed(count: number) {
  const db = database.db;
  const password = 'x';
  const mkUser = async (tag: string) => {
    const name = `b_${tag}_${Math.random().toString(36).slice(2, 10)}`;
    const [u] = await db.insert(users).values({ username: name, usernameLower: name, passwordHash: password, publicKey: { kty: 'OKP' } }).returning();
    const [s] = await db.insert(sessions).values({ userId: u!.id, expiresAt: new Date(Date.now() + 86_400_000) }).returning();
    return { id: u!.id, token: await signAccessToken(config.jwtSecret, u!.id, s!.id, new Date()) };
  };
  const owner = await mkUser('owner');
  const { group } = await db.transaction((tx) =>
    createGroup(tx, config, { userId: owner.id, encryptedName: Buffer.from('bench').toString('base64'), encryptedGroupKey: 'AAAA', now: new Date() }),
  );
  const members = [];
  for (let i = 0; i < count; i++) members.push(await mkUser(String(i)));
  for (let i = 0; i < members.length; i += 500) {
    await db.insert(groupMembers).values(members.slice(i, i + 500).map((m) => ({ groupId: group.id, userId: m.id, role: 'member' as const })));
  }
  await db.update(groups).set({ memberCount: sql`${groups.memberCount} + ${count}` }).where(eq(groups.id, group.id));
  return { groupId: group.id, tokens: [owner, ...members].map((m) => m.token) };
}

const event = (groupId: string, round: number) => ({ groupId, type: 'group_updated' as const, actorId: null, data: { round, pad: PAD } });

/** Events committed ahead, so a timed round is the fan-out alone (as the bare loop's is). */
const prepared = new Map<number, StoredEvent>();

async function prepare(c: Extract<Command, { cmd: 'prepare' }>) {
  await database.db.transaction(async (tx) => {
    for (const r of c.rounds) prepared.set(r, await appendEvent(tx, event(c.groupId, r)));
  });
  return { prepared: c.rounds.length };
}

async function publish(c: Extract<Command, { cmd: 'publish' }>) {
  if (c.fromWrite) {
    const t0 = now();
    await write(deps, async (tx, outbox) => outbox.add(await appendEvent(tx, event(c.groupId, c.round))));
    return { t0 };
  }
  const committed = prepared.get(c.round)!;
  const t0 = now();
  await deps.fanout.publish(c.groupId, [committed]);
  return { t0 };
}

function bareSend(round: number) {
  // What a minimal broadcaster does: one serialization, one send per socket.
  const t0 = now();
  const text = JSON.stringify(viewEvent({ ...event('00000000-0000-0000-0000-000000000000', round), seq: round, at: new Date() }, ''));
  for (const ws of bareClients) ws.send(text);
  return { t0 };
}

process.on('message', async (c: Command) => {
  try {
    if (c.cmd === 'seed') process.send!(await seed(c.members));
    else if (c.cmd === 'prepare') process.send!(await prepare(c));
    else if (c.cmd === 'publish') process.send!(await publish(c));
    else if (c.cmd === 'bare-send') process.send!(bareSend(c.round));
    else if (c.cmd === 'events') {
      for (let i = 0; i < c.count; i += 250) {
        await database.db.transaction(async (tx) => {
          for (let j = i; j < Math.min(c.count, i + 250); j++) await appendEvent(tx, event(c.groupId, -1));
        });
      }
      process.send!({ done: true });
    } else if (c.cmd === 'stats') {
      const cpu = process.cpuUsage();
      process.send!({ rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed, sockets: server.wss.clients.size, cpuSeconds: (cpu.user + cpu.system) / 1e6 });
    } else if (c.cmd === 'stop') {
      await server.close();
      bare.close();
      await database.close();
      process.send!({ stopped: true });
      process.exit(0);
    }
  } catch (err) {
    process.send!({ error: err instanceof Error ? err.message : String(err) });
  }
});

process.send!({ started: true, url: server.url, bareUrl: `ws://127.0.0.1:${(bare.address() as { port: number }).port}` });
