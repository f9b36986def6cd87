// The live benchmark's driver, beside the server that `npm start` runs (bench/live.bench.ts starts
// that on Postgres): it seeds an orbit in the same database, commits events as another server
// process would (its NOTIFY reaches the server's sockets), and runs a bare `ws` broadcast loop for
// comparison. The server's environment comes in BENCH_SERVER_ENV.
import { WebSocketServer, type WebSocket } from 'ws';
import { parseConfig } from '../src/config';
import { openNodePostgres } from '../src/adapters/db-node-postgres';
import { groupMembers, groups, sessions, users } from '../src/db/schema';
import { appendEvent, viewEvent } from '../src/domain/events';
import { createGroup } from '../src/domain/groups';
import { signAccessToken } from '../src/domain/tokens';
import { write } from '../src/domain/tx';
import { buildNodeDeps } from '../src/runtime/node-deps';
import { eq, sql } from 'drizzle-orm';

type Command =
  | { cmd: 'seed'; members: number }
  | { cmd: 'write'; groupId: string; round: number }
  | { cmd: 'events'; groupId: string; count: number }
  | { cmd: 'bare-send'; round: number }
  | { cmd: 'stop' };

const now = () => performance.timeOrigin + performance.now();
const PAD = 'x'.repeat(160); // an event of a typical size (~300 bytes on the wire)

// The server's own settings (bench/live.bench.ts passes them): tokens are signed with its secret.
const config = parseConfig({ ...JSON.parse(process.env.BENCH_SERVER_ENV!), LOG_LEVEL: 'error' });
const database = openNodePostgres(config.DATABASE_URL!, 4);
// Another process of the relay, without a listener: what it commits reaches the server by NOTIFY.
const deps = await buildNodeDeps({ config, db: database.db, databaseUrl: config.DATABASE_URL });

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

/** Commits one event as another process of the relay would: its NOTIFY reaches the server. */
async function writeOne(c: Extract<Command, { cmd: 'write' }>) {
  const t0 = now();
  await write(deps, async (tx, outbox) => outbox.add(await appendEvent(tx, event(c.groupId, c.round))));
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
    else if (c.cmd === 'write') process.send!(await writeOne(c));
    else if (c.cmd === 'bare-send') process.send!(bareSend(c.round));
    else if (c.cmd === 'events') {
      for (let i = 0; i < c.count; i += 250) {
        await database.db.transaction(async (tx) => {
          for (let j = i; j < Math.min(c.count, i + 250); j++) await appendEvent(tx, event(c.groupId, -1));
        });
      }
      process.send!({ done: true });
    } else if (c.cmd === 'stop') {
      bare.close();
      await deps.stop?.();
      await database.close();
      process.send!({ stopped: true });
      process.exit(0);
    }
  } catch (err) {
    process.send!({ error: err instanceof Error ? err.message : String(err) });
  }
});

process.send!({ started: true, bareUrl: `ws://127.0.0.1:${(bare.address() as { port: number }).port}` });
