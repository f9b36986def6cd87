// `npm run backup` of a running server under write load, `npm run restore` into a fresh data dir
// (or database), a server started on it: every write committed before the backup is there, the
// event log has no gap, media bytes are equal, quotas equal the rows. Refusals leave targets empty.
// The embedded default (backup through the running server's socket), or Postgres with TEST_DATABASE_URL.
import { copyFileSync, createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { extract, pack, type Headers } from 'tar-stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { b64, createOrbit, deliverKey, expectStatus, joinOrbit, json, post, registerUser, type TestUser } from '../support/api';
import { chunkOf, complete, putChunk, randomFile, sha256Hex, startUpload, THREE_CHUNKS } from '../support/media';
import { newDataDir } from '../support/data-dirs';
import { targetOf, freshDatabase, runEntry, startServerProcess, type ServerProcess } from '../support/server-process';
import { TEST_ENV } from '../support/types';
import { parseConfig } from '../../src/config';
import { openDatabase } from '../../src/runtime/node';
import { RestoreRefused, restoreFromFile } from '../../src/runtime/backup/restore';
import { restoreTarget } from '../../src/runtime/backup/source';

const postgres = process.env.TEST_DATABASE_URL;

/** One entry's content, read from a tar archive. */
async function entryOf(path: string, name: string): Promise<string> {
  const archive = extract();
  createReadStream(path).pipe(archive);
  for await (const entry of archive) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    if (entry.header.name === name) {
      archive.destroy();
      return Buffer.concat(chunks).toString('utf8');
    }
  }
  throw new Error(`no ${name} in ${path}`);
}

/** A tar archive's file entries: name, size and where the content starts (ustar headers, no pax). */
function tarEntries(tar: Buffer): Array<{ name: string; size: number; offset: number }> {
  const entries = [];
  const field = (at: number, length: number) => tar.subarray(at, at + length).toString('latin1').replace(/\0.*$/s, '');
  for (let at = 0; at + 512 <= tar.length && tar[at] !== 0; ) {
    const prefix = field(at + 345, 155);
    const name = (prefix ? `${prefix}/` : '') + field(at, 100);
    const size = parseInt(field(at + 124, 12).trim() || '0', 8);
    entries.push({ name, size, offset: at + 512 });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}

async function writeTar(path: string, entries: Array<[string, string, Partial<Headers>?]>): Promise<void> {
  const tar = pack();
  const done = pipeline(tar, createWriteStream(path));
  for (const [name, content, header] of entries) tar.entry({ name, ...header }, header?.type === 'symlink' ? undefined : content);
  tar.finalize();
  await done;
}

describe('npm run backup / npm run restore', () => {
  const dirs: string[] = [];
  const databases: Array<{ drop(): Promise<void> }> = [];
  const servers: ServerProcess[] = [];
  const work = mkdtempSync(join(tmpdir(), 'orbital-backup-'));
  const archive = join(work, 'orbital.tar');

  /**
   * A new, empty place to run a server: its own DATA_DIR and, on Postgres, its own database. `blank`:
   * an empty folder, as a user's first restore gets; otherwise an initialised embedded database.
   */
  async function place(blank = false): Promise<Record<string, string>> {
    const dir = blank ? mkdtempSync(join(tmpdir(), 'orbital-bk-data-')) : newDataDir('orbital-bk-data-');
    dirs.push(dir);
    const env: Record<string, string> = { ...TEST_ENV, LOG_LEVEL: 'info', DATA_DIR: dir };
    if (postgres) {
      const db = await freshDatabase(postgres, 'orbital_backup');
      databases.push(db);
      env.DATABASE_URL = db.url;
    }
    return env;
  }
  async function start(env: Record<string, string>) {
    const server = await startServerProcess(env);
    servers.push(server);
    return server;
  }
  async function cli(entry: 'backup' | 'restore', env: Record<string, string>, file: string) {
    const run = runEntry(`src/cli/${entry}.ts`, env, [file]);
    return { code: await run.exited, out: run.output() };
  }
  /**
   * The restore's own code in this process, on `env`'s database opened once for many refusals (a
   * CLI process opens the embedded database anew each time: seconds each). `npm run restore` prints
   * a refusal's message as its one line (`cli` checks that for the first of each kind).
   */
  async function restoreHere(env: Record<string, string>, files: string[]) {
    const config = parseConfig(env, 'x'.repeat(32));
    const database = await openDatabase(config);
    try {
      const results: Array<{ code: number | null; out: string }> = [];
      for (const file of files) {
        results.push(
          await restoreFromFile(file, restoreTarget(config, database)).then(
            () => ({ code: 0, out: '' }),
            (err: unknown) => {
              if (err instanceof RestoreRefused) return { code: 1, out: err.message };
              throw err;
            },
          ),
        );
      }
      return results;
    } finally {
      await database.close();
    }
  }

  let source: Record<string, string>;
  let server: ServerProcess;
  let owner: TestUser;
  let orbit: string;
  let file: Uint8Array;
  let mediaId: string;
  const before = { threads: [] as string[], replies: [] as string[], messages: [] as string[] };
  const during = { threads: [] as string[], failed: 0 };

  beforeAll(async () => {
    source = await place();
    server = await start(source);
    const t = targetOf(server);
    owner = await registerUser(t);
    const member = await registerUser(t);
    const created = await createOrbit(t, owner);
    orbit = created.id;
    await joinOrbit(t, member, created.inviteCode);
    await deliverKey(t, owner, orbit, member.id);
    for (let i = 0; i < 5; i++) {
      const thread = await json(await expectStatus(await t.fetch('/api/threads', post({ group_id: orbit, key_epoch: 1, encrypted_title: b64(24), encrypted_body: b64(300) }, owner.auth)), 201));
      before.threads.push(thread.id);
      const reply = await json(await expectStatus(await t.fetch(`/api/threads/${thread.id}/replies`, post({ key_epoch: 1, encrypted_body: b64(200) }, member.auth)), 201));
      before.replies.push(reply.id);
      const message = await json(await expectStatus(await t.fetch(`/api/groups/${orbit}/messages`, post({ key_epoch: 1, envelope: b64(100) }, member.auth)), 201));
      before.messages.push(message.id);
    }
    file = randomFile(THREE_CHUNKS);
    const upload = await startUpload(t, owner, orbit, file.length);
    mediaId = upload.media_id;
    for (let i = 0; i < upload.chunk_count; i++) await expectStatus(await putChunk(t, owner, mediaId, i, chunkOf(file, i)), 200);
    await expectStatus(await complete(t, owner, mediaId), 201);

    // Writes go on while the backup runs.
    let writing = true;
    const load = (async () => {
      while (writing) {
        const res = await t.fetch('/api/threads', post({ group_id: orbit, key_epoch: 1, encrypted_title: b64(24), encrypted_body: b64(300) }, owner.auth));
        if (res.status === 201) during.threads.push((await res.json()).id);
        else during.failed++;
      }
    })();
    const backup = await cli('backup', source, archive);
    writing = false;
    await load;
    expect(backup.out).toMatch(/Backed up \d+ rows in \d+ tables and 4 media files/); // three parts and the manifest
    expect(backup.code).toBe(0);
  }, 180_000);

  afterAll(async () => {
    for (const s of servers) await s.kill('SIGTERM');
    for (const db of databases) await db.drop();
    for (const dir of [...dirs, work]) rmSync(dir, { recursive: true, force: true });
  });

  it('restores into a fresh place, and a server there has every committed write, a whole event log, the media bytes and quotas equal to the rows', { timeout: 180_000 }, async () => {
    expect(during.failed).toBe(0);
    expect(during.threads.length).toBeGreaterThan(0);
    const target = await place(true);
    const restore = await cli('restore', target, archive);
    expect(restore.out).toContain('Restored');
    expect(restore.code).toBe(0);
    const t = targetOf(await start(target));

    // Tokens signed before still open the restored sessions (same JWT_SECRET).
    const ids = new Set<string>();
    for (let cursor = ''; ; ) {
      const page = await json(await expectStatus(await t.fetch(`/api/groups/${orbit}/threads?limit=100${cursor}`, { headers: owner.auth }), 200));
      for (const th of page.items as Array<{ id: string }>) ids.add(th.id);
      if (!page.next_cursor) break;
      cursor = `&cursor=${encodeURIComponent(page.next_cursor)}`;
    }
    for (const id of before.threads) expect(ids.has(id)).toBe(true);
    // Nothing that was never written; what the load wrote during the backup is there or not, whole.
    for (const id of ids) expect([...before.threads, ...during.threads]).toContain(id);
    for (const [i, id] of before.threads.entries()) {
      const replies = await json(await expectStatus(await t.fetch(`/api/threads/${id}/replies?limit=100`, { headers: owner.auth }), 200));
      expect(replies.items.map((r: { id: string }) => r.id)).toEqual([before.replies[i]]);
    }
    const messages = await json(await expectStatus(await t.fetch(`/api/groups/${orbit}/messages?limit=100`, { headers: owner.auth }), 200));
    for (const id of before.messages) expect(JSON.stringify(messages)).toContain(id);

    // The event log: seq 1 … last with no gap, every restored thread's creation among them.
    const group = await json(await expectStatus(await t.fetch(`/api/groups/${orbit}`, { headers: owner.auth }), 200));
    const seqs: number[] = [];
    for (let after = 0; ; ) {
      const page = await json(await expectStatus(await t.fetch(`/api/groups/${orbit}/events?after_seq=${after}&limit=100`, { headers: owner.auth }), 200));
      seqs.push(...page.items.map((e: { seq: number }) => e.seq));
      if (!page.items.length || page.next_after_seq === null || page.next_after_seq === after) break;
      after = page.next_after_seq;
    }
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(seqs.at(-1)).toBe(group.last_seq);

    const download = await t.fetch(`/api/media/${mediaId}/download`, { headers: owner.auth });
    expect(download.status).toBe(200);
    expect(await sha256Hex(new Uint8Array(await download.arrayBuffer()))).toBe(await sha256Hex(file));
    const quota = await json(await expectStatus(await t.fetch(`/api/groups/${orbit}/quota`, { headers: owner.auth }), 200));
    expect(quota).toMatchObject({ bytes_used: file.length, files_used: 1 });

    // It goes on from there: a new write takes the next seq.
    await expectStatus(await t.fetch('/api/threads', post({ group_id: orbit, key_epoch: 1, encrypted_title: b64(24), encrypted_body: b64(300) }, owner.auth)), 201);
    const latest = await json(await t.fetch(`/api/groups/${orbit}`, { headers: owner.auth }));
    expect(latest.last_seq).toBe(group.last_seq + 1);
  });

  it('refuses a target that is not empty, and a damaged archive, leaving the target as it was', { timeout: 180_000 }, async () => {
    // Two restores at once into one place: one wins, and the other leaves the winner's media alone.
    const target = await place();
    const both = await Promise.all([cli('restore', target, archive), cli('restore', target, archive)]);
    expect(both.map((r) => r.code).sort()).toEqual([0, 1]);
    const loser = both.find((r) => r.code === 1)!.out.trim();
    expect(loser).toMatch(/in use by process|not empty|already holds media/);
    // Beside Postgres the lock guards the media folder: no talk of an embedded database.
    if (postgres) expect(loser).not.toContain('embedded database');
    const mediaFiles = readdirSync(join(target.DATA_DIR!, 'blobs', 'objects'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    expect(mediaFiles).toHaveLength(4);
    const again = await cli('restore', target, archive);
    expect(again.code).toBe(1);
    expect(again.out.trim()).toMatch(/not empty|already holds media/);

    // A truncated archive, a file that is no backup, rows for a system catalog, a file outside the
    // store: each refused, and nothing written — the whole archive goes into the same place after them.
    const fresh = await place();
    const cut = join(work, 'cut.tar');
    copyFileSync(archive, cut);
    truncateSync(cut, Math.floor(statSync(archive).size / 2));
    const damaged = await cli('restore', fresh, cut);
    expect(damaged.code).toBe(1);
    expect(damaged.out).toMatch(/incomplete|damaged/);
    expect(damaged.out).not.toMatch(/\n\s+at /);

    const notOurs = join(work, 'not-a-backup.tar');
    copyFileSync(join(process.cwd(), 'package.json'), notOurs);
    const refused = await cli('restore', fresh, notOurs);
    expect([refused.code, refused.out.trim()]).toEqual([1, expect.stringMatching(/not an Orbital backup|damaged/)]);
    expect(readFileSync(archive).subarray(0, 13).toString()).toBe('manifest.json');

    // Crafted archives: the first of each kind through `npm run restore` (one line, exit 1), the
    // others through the same code in this process. `expected` matches the whole line.
    const manifest = JSON.parse(await entryOf(archive, 'manifest.json'));
    const crafted: Array<{ entries: Array<[string, string, Partial<Headers>?]>; expected: RegExp }> = [];
    const unexpected = /^Unexpected entry in the archive: .*\.$/;
    for (const [name, content, header] of [
      ['db/pg_authid.jsonl', '{"rolname":"intruder","rolsuper":true}\n'],
      ['blobs/../../escaped', 'x'],
      ['blobs/media/linked', '', { type: 'symlink', linkname: '/etc/passwd' }],
      // A media manifest naming a file outside its folder: a download would serve DATA_DIR/jwt-secret.
      ['blobs/media/stolen/manifest.json', JSON.stringify({ parts: [{ file: '../../../jwt-secret', size: 64 }] })],
      ['blobs/media/stolen/notes.txt', 'x'],
    ] as Array<[string, string, Partial<Headers>?]>) {
      const withCatalog = { ...manifest, tables: [...manifest.tables, { name: 'pg_authid', rows: 1 }] };
      crafted.push({ entries: [['manifest.json', JSON.stringify(withCatalog)], [name, content, header]], expected: unexpected });
    }
    // Damaged tables and names (some after media were written): one line each, and nothing left.
    const part = `blobs/media/x/000000.${'a'.repeat(64)}.part`;
    for (const [entries, expected] of [
      [[[part, 'x'], ['db/users.jsonl', 'y'.repeat(17 << 20)]], /^The archive is damaged: a row of table users is longer than [^\n]*$/],
      [[['db/users.jsonl', 'not json\n']], /^The archive is damaged: table users holds a row this database refuses \([^\n]*$/],
      [[[part, 'x'], [part, 'x']], /^The archive is damaged: "blobs\/media\/x\/000000\.a+\.part" appears twice\.$/],
      [[['blobs/x\nRestored 16 rows', 'x']], /^Unexpected entry in the archive: "blobs\/x\\nRestored 16 rows"\.$/],
      [[[`blobs/media/x/${'0'.repeat(300)}.${'a'.repeat(32)}.part`, 'x']], /^Unexpected entry in the archive: ".{201}"\.$/],
    ] as Array<[Array<[string, string]>, RegExp]>) {
      crafted.push({ entries: [['manifest.json', JSON.stringify(manifest)], ...entries], expected });
    }
    // A manifest of ours with a part missing or a count that is no number: one line naming the field.
    for (const [broken, expected] of [
      [{ ...manifest, blobs: undefined }, /^The archive's manifest is damaged \(blobs\): nothing was restored\.$/],
      [{ ...manifest, tables: manifest.tables.map((t: { rows: number }) => ({ ...t, rows: String(t.rows) })) }, /^The archive's manifest is damaged \(tables\.0\.rows\): nothing was restored\.$/],
    ] as const) {
      crafted.push({ entries: [['manifest.json', JSON.stringify(broken)]], expected });
    }
    const files = await Promise.all(
      crafted.map(async ({ entries }, i) => {
        const path = join(work, `crafted-${i}.tar`);
        await writeTar(path, entries);
        return path;
      }),
    );
    const viaCli = [0, 5, 10]; // one crafted entry, one damaged table, one damaged manifest
    const outcomes = await restoreHere(fresh, files.filter((_, i) => !viaCli.includes(i)));
    for (const i of viaCli) outcomes.splice(i, 0, await cli('restore', fresh, files[i]!));
    outcomes.forEach((out, i) => expect([i, out.code, out.out.trim()]).toEqual([i, 1, expect.stringMatching(crafted[i]!.expected)]));
    expect(readdirSync(fresh.DATA_DIR!).includes('blobs') ? readdirSync(join(fresh.DATA_DIR!, 'blobs'), { recursive: true }).filter((f) => String(f).endsWith('.part')) : []).toEqual([]);
    expect((await cli('restore', fresh, archive)).code).toBe(0);
  });

  it.skipIf(postgres)('a backup reader that goes away mid-archive leaves the server running, and the next backup is whole', { timeout: 120_000 }, async () => {
    // The embedded server streams its backup over DATA_DIR/orbital.sock; Ctrl-C on `npm run backup` ends it early.
    const reader = connect(join(source.DATA_DIR!, 'orbital.sock'));
    reader.write('GET /backup HTTP/1.1\r\nHost: backup\r\n\r\n');
    await once(reader, 'data'); // the archive has begun: the three 5 MiB chunks are still to come
    reader.destroy();
    const again = await cli('backup', source, join(work, 'again.tar'));
    expect([again.code, again.out]).toEqual([0, expect.stringMatching(/Backed up \d+ rows in \d+ tables and 4 media files/)]);
    expect(server.proc.exitCode).toBeNull();
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
  });

  it('two backups into one file at once: both succeed, each with its own count, and the file is a whole archive', { timeout: 120_000 }, async () => {
    const out = join(work, 'twice.tar');
    const runs = await Promise.all([cli('backup', source, out), cli('backup', source, out)]);
    for (const run of runs) expect([run.code, run.out]).toEqual([0, expect.stringMatching(/Backed up \d+ rows in \d+ tables and 4 media files/)]);
    expect(readdirSync(work).filter((f) => f.startsWith('twice.tar.'))).toEqual([]);
    const target = await place();
    expect((await cli('restore', target, out)).code).toBe(0);
  });

  it('Ctrl-C on npm run backup leaves no staging folder and no .partial file; a killed backup\'s staging goes at the next start', { timeout: 120_000 }, async () => {
    // No server runs on this place: the CLI takes the snapshot itself (embedded, or beside Postgres).
    const target = await place();
    expect((await cli('restore', target, archive)).code).toBe(0);
    const staged = () => readdirSync(target.DATA_DIR!).filter((f) => f.startsWith('.backup-'));
    // A FIFO as the archive's file, read by the test: once the archive has begun, the test stops
    // reading, so the CLI is mid-archive with its snapshot staged. Ctrl-C then.
    const out = join(work, 'interrupted.tar');
    const run = runEntry('src/cli/backup.ts', target, [out]);
    // Its file before the rename is `<file>.<pid>.partial`: in place long before the CLI has loaded.
    const partial = `${out}.${run.proc.pid}.partial`;
    execFileSync('mkfifo', [partial]);
    const reader = createReadStream(partial);
    await once(reader, 'data');
    reader.pause();
    expect(staged()).toHaveLength(1);
    run.proc.kill('SIGINT');
    reader.resume(); // a write blocked on the full pipe would hold the exit
    expect(await run.exited).toBe(130);
    expect(staged()).toEqual([]);
    expect(existsSync(partial)).toBe(false);

    // What SIGKILL or the OOM killer leaves: a staging folder of a process that is gone.
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    mkdirSync(join(target.DATA_DIR!, `.backup-${dead}-x1y2z3`, 'db'), { recursive: true });
    const restarted = await start(target);
    expect(staged()).toEqual([]);
    expect(restarted.output()).toContain('removed the staging folders of interrupted backups');
  });

  it('Ctrl-C on npm run restore removes the media files it wrote: the next restore goes into the same place', { timeout: 120_000 }, async () => {
    const target = await place();
    const objects = join(target.DATA_DIR!, 'blobs', 'objects');
    const mediaFiles = () => readdirSync(objects, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
    // The archive through a FIFO, up to the middle of its last media part: the restore has written
    // the files before it and is writing that one, waiting for the rest. Ctrl-C then.
    const fifo = join(work, 'restore.fifo');
    execFileSync('mkfifo', [fifo]);
    const run = runEntry('src/cli/restore.ts', target, [fifo]);
    const writer = createWriteStream(fifo);
    const bytes = readFileSync(archive);
    const part = tarEntries(bytes).filter((e) => /^blobs\/.*\.part$/.test(e.name) && e.size > 1).pop()!;
    writer.write(bytes.subarray(0, part.offset + Math.floor(part.size / 2)));
    const writing = join(objects, part.name.slice('blobs/'.length));
    for (let i = 0; i < 1200 && !existsSync(writing); i++) await new Promise((r) => setTimeout(r, 50));
    expect(mediaFiles()).toBe(3); // two parts, and the third begun
    run.proc.kill('SIGINT');
    // Its end only once the interrupt is handled (else the archive's early end may be read first),
    // but then at once: a read blocked on the FIFO would hold the exit.
    for (let i = 0; i < 400 && !run.output().includes('Interrupted'); i++) await new Promise((r) => setTimeout(r, 25));
    writer.end();
    expect(await run.exited).toBe(130);
    expect(run.output()).toContain('Interrupted: nothing was restored.');
    expect(mediaFiles()).toBe(0);
    // A folder a restore made just before its interrupt, with nothing in it yet: no media, no refusal.
    mkdirSync(join(objects, 'media', 'left-by-an-interrupt', 'empty'), { recursive: true });
    expect((await cli('restore', target, archive)).code).toBe(0);
  });

  it.skipIf(postgres)('stops on SIGTERM while a backup reader stalls: the archive ends early and the server exits', { timeout: 60_000 }, async () => {
    const reader = connect(join(source.DATA_DIR!, 'orbital.sock'));
    reader.write('GET /backup HTTP/1.1\r\nHost: backup\r\n\r\n');
    await once(reader, 'data');
    reader.pause(); // reads nothing more: the server's writes wait on it
    const ended = once(reader, 'close');
    expect(await server.kill('SIGTERM')).toBe(0);
    reader.resume(); // what the server had written, then the end: it did not wait for this reader
    await ended;
    // The ended backup's staging folder (copies of every table, links to every media file) is gone.
    expect(readdirSync(source.DATA_DIR!).filter((f) => f.startsWith('.backup-'))).toEqual([]);
  });
});
