// Measures what one of each user action costs the database, for docs/CAPACITY.md:
// `npx tsx bench/capacity-probe.ts`. A Node server (`npm start`'s entry, rate limits on) on a fresh
// Postgres database; after each action, the rows it inserted, updated and deleted
// (pg_stat_user_tables) and the NOTIFYs on the live channel.
import pg from 'pg';
import { OrbitalClient, sendChunks } from '../src/client';
import { startServerProcess } from '../test/support/server-process';
import { freshPostgres } from './postgres';

const b64 = (n: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString('base64');
const key = () => ({ kty: 'OKP', crv: 'X25519', x: Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url') });

const database = await freshPostgres();
if (!database) throw new Error('needs Postgres');
const server = await startServerProcess({ DATABASE_URL: database.url, JWT_SECRET: 'capacity-probe-secret-0123456789abcdef', LOG_LEVEL: 'info' });
const watcher = new pg.Client({ connectionString: database.url });
await watcher.connect();
let notices = 0;
watcher.on('notification', () => notices++);
await watcher.query('LISTEN orbital_live');

async function counters() {
  // An idle backend reports its counts within 10 s (PGSTAT_IDLE_INTERVAL).
  await new Promise((r) => setTimeout(r, 11_000));
  const { rows } = await watcher.query<{ ins: string; upd: string; del: string }>(
    'select sum(n_tup_ins) as ins, sum(n_tup_upd) as upd, sum(n_tup_del) as del from pg_stat_user_tables',
  );
  return { ins: Number(rows[0]!.ins), upd: Number(rows[0]!.upd), del: Number(rows[0]!.del), notices };
}

const results: Array<Record<string, string | number>> = [];
async function measure(action: string, work: () => Promise<unknown>, times = 10) {
  const before = await counters();
  for (let i = 0; i < times; i++) await work();
  const after = await counters();
  const per = (k: 'ins' | 'upd' | 'del' | 'notices') => Math.round(((after[k] - before[k]) / times) * 10) / 10;
  results.push({ action, 'rows inserted': per('ins'), 'rows updated': per('upd'), 'rows deleted': per('del'), NOTIFYs: per('notices') });
}

const alice = new OrbitalClient({ server: server.url });
const bob = new OrbitalClient({ server: server.url });
const aliceName = `alice${Date.now()}`;
await alice.register({ username: aliceName, password: 'correct horse battery staple', public_key: key() as never });
await bob.register({ username: `bob${Date.now()}`, password: 'correct horse battery staple', public_key: key() as never });
const { group, invite } = await alice.createGroup({ encrypted_name: b64(24), encrypted_group_key: b64(256), key_check: b64(16) });
await bob.joinGroup(invite.code!);
const me = await bob.me();
await alice.deliverKeys(group.id, me.id, [{ key_epoch: 1, encrypted_group_key: b64(256) }]);
const thread = await alice.createThread({ group_id: group.id, key_epoch: 1, encrypted_title: b64(24), encrypted_body: b64(200) });

await measure('log in (new session)', () => new OrbitalClient({ server: server.url }).login(aliceName, 'correct horse battery staple'));
await measure('refresh the token pair', () => alice.refresh());
await measure('create a thread', () => alice.createThread({ group_id: group.id, key_epoch: 1, encrypted_title: b64(24), encrypted_body: b64(200) }));
await measure('reply', () => bob.createReply(thread.id, { key_epoch: 1, encrypted_body: b64(200) }));
await measure('relay message', () => bob.sendMessage(group.id, { key_epoch: 1, envelope: b64(200) }));
await measure('mark read', () => bob.markRead(thread.id, 1));
await measure('list threads (read)', () => bob.listThreads(group.id));
await measure('live ticket', () => bob.liveTicket(group.id));
const file = new Uint8Array(2 * 5 * 1024 * 1024 + 1000);
await measure(
  'upload 10 MiB (3 chunks)',
  async () => {
    const started = await alice.startUpload({ group_id: group.id, key_epoch: 1, size_bytes: file.length, encrypted_metadata: b64(64), encryption_iv: b64(8) });
    await sendChunks(alice, started.media_id, { chunkCount: 3, chunkLength: (i) => Math.min(5 * 1024 * 1024, file.length - i * 5 * 1024 * 1024), read: async (i) => file.subarray(i * 5 * 1024 * 1024, (i + 1) * 5 * 1024 * 1024) }, { concurrency: 1 });
  },
  3,
);
const media = (await alice.listMedia(group.id)).items[0]!;
await measure('download', async () => (await bob.download(media.id)).arrayBuffer());

console.log('| action | rows inserted | rows updated | rows deleted | NOTIFYs |');
console.log('| --- | --- | --- | --- | --- |');
for (const r of results) console.log(`| ${r.action} | ${r['rows inserted']} | ${r['rows updated']} | ${r['rows deleted']} | ${r.NOTIFYs} |`);
await watcher.end();
await server.kill('SIGTERM');
await database.drop();
process.exit(0);
