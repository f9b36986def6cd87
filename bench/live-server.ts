// The live benchmark's driver, beside the server that `npm start` runs (bench/live.bench.ts starts
// that on Postgres): it seeds an orbit in the same database, commits events as another server
// process would (its NOTIFY reaches the server's sockets), and runs a bare `ws` broadcast loop for
// comparison. The server's environment comes in BENCH_SERVER_ENV.
import { WebSocketServer, type WebSocket } from 'ws';
import { parseConfig } from '../src/config';
import { openNodePostgres } from '../src/adapters/db-node-postgres';
import { appendEvent, viewEvent } from '../src/domain/events';
import { write } from '../src/domain/tx';
import { buildNodeDeps } from '../src/runtime/node-deps';
import { seedOrbit } from './live-seed';

type Command =
  | { cmd: 'seed'; members: number } // besides the owner
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
    if (c.cmd === 'seed') process.send!(await seedOrbit(config.DATABASE_URL!, c.members + 1, config.jwtSecret));
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
