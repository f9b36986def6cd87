// Crash recovery on real Postgres: the server and the cleanup command are killed with SIGKILL
// halfway through their work, restarted, and what they left must heal. An upload killed in the
// middle of a chunk resumes from the status endpoint (the typed client) and downloads byte for
// byte; a cleanup killed between batches finishes on the next run without removing a file twice.
// Afterwards no blob on disk lacks a live media row or a queued deletion, and every quota equals
// its rows. Needs TEST_DATABASE_URL (the Postgres pass of .ci/run).
import { request } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fsBlobStore } from '../../src/adapters/blob-fs';
import { blobKeyOf } from '../../src/domain/media/access';
import { OrbitalClient, sendChunks } from '../../src/client';
import { b64, publicKey, unique } from '../support/api';
import { CHUNK, chunkOf, randomFile } from '../support/media';
import { freshDatabase, runEntry, startServerProcess, type ServerProcess } from '../support/server-process';

const BASE = process.env.TEST_DATABASE_URL;
const JWT_SECRET = 'crash-test-secret-0123456789-abcdefghijklmnop';
const EXPIRED_PER_ORBIT = 600;

let database: { url: string; drop(): Promise<void> };
let db: pg.Pool;
let dataDir: string;
let server: ServerProcess | undefined;
const env = () => ({ DATABASE_URL: database.url, DATA_DIR: dataDir, JWT_SECRET, RATE_LIMIT: 'off' });
const sql = async <T = Record<string, any>>(text: string, params: unknown[] = []) => (await db.query(text, params)).rows as T[];

/** Every blob folder on disk (media/<orbit>/<media>), whether or not it holds a complete object. */
function blobFolders(): string[] {
  const root = join(dataDir, 'blobs', 'objects', 'media');
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((g) => readdirSync(join(root, g)).map((m) => `media/${g}/${m}`));
}

/** Blob folders that neither a media row nor a queued deletion accounts for. */
async function orphanBlobs(): Promise<string[]> {
  const owned = new Set((await sql<{ k: string }>('select blob_key as k from media union select blob_key from blob_deletions')).map((r) => r.k));
  return blobFolders().filter((k) => !owned.has(k));
}

/** Orbits whose quota row differs from what their media rows add up to. */
async function quotaMismatches() {
  return sql(`
    select q.group_id, q.bytes_used, q.files_used, q.bytes_reserved, q.files_reserved, r.*
      from group_quotas q
      cross join lateral (
        select coalesce(sum(size_bytes) filter (where status = 'complete'), 0) as rows_bytes_used,
               count(*) filter (where status = 'complete') as rows_files_used,
               coalesce(sum(size_bytes) filter (where status = 'uploading'), 0) as rows_bytes_reserved,
               count(*) filter (where status = 'uploading') as rows_files_reserved
          from media m where m.group_id = q.group_id) r
     where (q.bytes_used, q.files_used, q.bytes_reserved, q.files_reserved)
        is distinct from (r.rows_bytes_used, r.rows_files_used, r.rows_bytes_reserved, r.rows_files_reserved)`);
}

async function restart() {
  await server?.kill('SIGKILL');
  server = await startServerProcess(env());
  return server;
}

const clientFor = (url: string, tokens: { access_token: string; refresh_token: string }) => new OrbitalClient({ server: url, tokens, retries: 0 });

describe.skipIf(!BASE)('crash recovery on Postgres (skipped: set TEST_DATABASE_URL to run it)', () => {
  let tokens: { access_token: string; refresh_token: string };
  let groupId: string;

  beforeAll(async () => {
    database = await freshDatabase(BASE!, 'orbital_crash');
    db = new pg.Pool({ connectionString: database.url, max: 2 });
    dataDir = mkdtempSync(join(tmpdir(), 'orbital-crash-'));
    const first = await restart();
    const client = new OrbitalClient({ server: first.url });
    const auth = await client.register({ username: unique('crash'), password: 'correct horse battery staple', public_key: publicKey() });
    tokens = { access_token: auth.access_token, refresh_token: auth.refresh_token };
    groupId = (await client.createGroup({ encrypted_name: b64(24), encrypted_group_key: b64(256) })).group.id;
  }, 120_000);

  afterAll(async () => {
    await server?.kill('SIGKILL');
    await db?.end();
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('an upload killed in the middle of a chunk resumes from its status and downloads byte for byte', async () => {
    const file = randomFile(2 * CHUNK + 1234);
    let client = clientFor(server!.url, tokens);
    const started = await client.startUpload({ group_id: groupId, key_epoch: 1, size_bytes: file.length, encrypted_metadata: b64(64), encryption_iv: b64(8) });
    await client.putChunk(started.media_id, 0, chunkOf(file, 0));

    // Half of chunk 1 reaches the server's disk, then the server dies.
    const folder = join(dataDir, 'blobs', 'objects', blobKeyOf(groupId, started.media_id));
    const partial = request(`${server!.url}/api/media/upload/${started.media_id}/chunks/1`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/octet-stream', 'content-length': CHUNK },
    });
    partial.on('error', () => {});
    partial.write(chunkOf(file, 1).subarray(0, CHUNK / 2));
    await waitUntil(() => readdirSync(folder).some((f) => f.endsWith('.tmp') && statSync(join(folder, f)).size > 0));
    await restart();

    client = clientFor(server!.url, tokens);
    const status = await client.uploadStatus(started.media_id);
    expect({ status: status.status, received: status.received, missing: status.missing }).toEqual({ status: 'uploading', received: [0], missing: [1, 2] });
    const info = await sendChunks(client, started.media_id, {
      chunkCount: started.chunk_count,
      chunkLength: (i) => chunkOf(file, i).length,
      read: async (i) => chunkOf(file, i),
    });
    expect(info.size_bytes).toBe(file.length);

    const downloaded = new Uint8Array(await (await client.download(started.media_id)).arrayBuffer());
    expect(downloaded.length).toBe(file.length);
    expect(Buffer.compare(downloaded, file)).toBe(0);
    // The half-written copy of chunk 1 went with the completion: the folder is the object alone.
    expect(readdirSync(folder).sort()).toEqual([...readdirSync(folder).filter((f) => /^00000[0-2]\.[0-9a-f]+\.part$/.test(f)), 'manifest.json'].sort());
    expect(readdirSync(folder)).toHaveLength(4);
    expect(await orphanBlobs()).toEqual([]);
    expect(await quotaMismatches()).toEqual([]);
  }, 120_000);

  it('a cleanup killed between batches finishes on the next run: each file removed once, no orphan blob, quotas equal the rows', async () => {
    // Expired files in three orbits (more than one cleanup batch in all), blobs written by the disk store.
    const client = clientFor(server!.url, tokens);
    const orbits: string[] = [];
    for (let i = 0; i < 3; i++) orbits.push((await client.createGroup({ encrypted_name: b64(24), encrypted_group_key: b64(256) })).group.id);
    await server!.kill('SIGTERM');
    server = undefined;
    for (const orbit of orbits) await addExpiredFiles(orbit);
    const expired = orbits.length * EXPIRED_PER_ORBIT;
    const due = async () => Number((await sql(`select count(*) as n from media where status = 'complete' and expires_at <= now()`))[0]!.n);
    expect(await due()).toBe(expired);
    expect(await quotaMismatches()).toEqual([]);

    // Killed as soon as its first batch has committed.
    const first = runEntry('src/cli/cleanup.ts', env());
    await waitUntil(async () => (await due()) < expired || first.proc.exitCode !== null, 5);
    await first.kill('SIGKILL');
    const left = await due();
    expect(left, `the cleanup finished before it could be killed:\n${first.output()}`).toBeGreaterThan(0);
    expect(left).toBeLessThan(expired);
    // What the killed run did, it did whole: rows and quotas agree, every blob is accounted for.
    expect(await quotaMismatches()).toEqual([]);
    expect(await orphanBlobs()).toEqual([]);

    // The next run (an hour on, so deletions the killed run had claimed are due again) finishes.
    const later = new Date(Date.now() + 3600_000).toISOString();
    const second = runEntry('src/cli/cleanup.ts', env(), ['--now', later]);
    expect(await second.exited, second.output()).toBe(0);

    expect(await due()).toBe(0);
    expect(await sql('select blob_key from blob_deletions')).toEqual([]);
    expect(await orphanBlobs()).toEqual([]);
    expect(blobFolders().filter((k) => orbits.some((g) => k.startsWith(`media/${g}/`)))).toEqual([]);
    expect(await quotaMismatches()).toEqual([]);
    // Each file expired exactly once: one media_expired event per file, seqs without a gap.
    const events = await sql<{ group_id: string; n: string; seqs: string; span: string }>(
      `select group_id, count(*) as n, count(distinct data->>'id') as seqs, max(seq) - min(seq) + 1 as span
         from orbit_events where type = 'media_expired' group by group_id`,
    );
    expect(events.map((e) => [Number(e.n), Number(e.seqs), Number(e.span)])).toEqual(orbits.map(() => [EXPIRED_PER_ORBIT, EXPIRED_PER_ORBIT, EXPIRED_PER_ORBIT]));
  }, 180_000);
});

/** Expired, completed files in an orbit: rows as the upload path leaves them, blobs through the disk store. */
async function addExpiredFiles(groupId: string) {
  const [owner] = await sql<{ id: string }>('select owner_id as id from groups where id = $1', [groupId]);
  const rows = await sql<{ blob_key: string }>(
    `insert into media (group_id, author_id, key_epoch, encrypted_metadata, encryption_iv, size_bytes, chunk_count, status, blob_key,
                        upload_expires_at, uploaded_at, expires_at)
     select $1::uuid, $2::uuid, 1, '\\x00', 'iv', 16, 1, 'complete', 'media/' || $1::text || '/' || gen_random_uuid(),
            now() - interval '8 days', now() - interval '8 days', now() - interval '1 hour'
       from generate_series(1, $3) returning blob_key`,
    [groupId, owner!.id, EXPIRED_PER_ORBIT],
  );
  await sql('update group_quotas set bytes_used = bytes_used + 16 * $2, files_used = files_used + $2 where group_id = $1', [groupId, EXPIRED_PER_ORBIT]);
  const store = fsBlobStore(join(dataDir, 'blobs'));
  for (let j = 0; j < rows.length; j += 50) {
    await Promise.all(
      rows.slice(j, j + 50).map(async ({ blob_key }) => {
        await store.createUpload(blob_key);
        const part = await store.putPart(blob_key, null, 0, new Blob([randomFile(16) as Uint8Array<ArrayBuffer>]).stream(), 16);
        await store.completeUpload(blob_key, null, [{ index: 0, etag: part.etag }], [16]);
      }),
    );
  }
}

async function waitUntil(check: () => boolean | Promise<boolean>, everyMs = 20, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
