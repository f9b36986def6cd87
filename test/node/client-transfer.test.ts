// Encrypted file transfer through the typed client against the real server: parallel chunks with
// their SHA-256, resuming after a crash from the server's status (and from the journal when the
// crash came before the start request's answer), downloads resuming from a partial file, a stream
// cut mid-way, and chunks that decrypt on their own.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import {
  CHUNK_SIZE,
  FileCipher,
  OrbitalClient,
  PIECE_SIZE,
  SecureClient,
  downloadEncryptedFile,
  downloadRaw,
  openMediaMetadata,
  pieceCount,
  uploadEncryptedFile,
  type JournalStore,
  type OrbitCipher,
  type UploadJournal,
  type UploadProgress,
} from '../../src/client';
import { unique } from '../support/api';
import { createTarget } from '../support/node-target';
import { offeredOperations, requireOperations, serverUrl } from '../support/offered';

const MEDIA_OPS = [
  'post /api/media/upload',
  'put /api/media/upload/{}/chunks/{}',
  'get /api/media/upload/{}',
  'get /api/media/uploads',
  'post /api/media/upload/complete',
  'get /api/media/{}/info',
  'get /api/media/{}/download',
  'get /api/groups/{}/media',
];

let t: Awaited<ReturnType<typeof createTarget>>;
let server: string;
let offered = new Set<string>();
let owner: SecureClient;
let groupId: string;
let cipher: OrbitCipher;
const dir = mkdtempSync(join(tmpdir(), 'orbital-transfer-'));

/** 2 full pieces and a short last one: three chunks. */
const plain = randomBytes(2 * PIECE_SIZE + 1000);
const source = join(dir, 'source.bin');
let uploadedId: string | undefined;

beforeAll(async () => {
  t = await createTarget();
  server = await serverUrl(t);
  offered = await offeredOperations(t);
  ({ secure: owner } = await SecureClient.register(new OrbitalClient({ server }), { username: unique('files'), password: 'correct horse battery staple' }));
  groupId = (await owner.createOrbit('files')).group.id;
  cipher = await owner.currentCipher(groupId);
  writeFileSync(source, plain);
});

afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

const needsMedia = (ctx: TestContext) => requireOperations(ctx, offered, MEDIA_OPS);

function memoryJournal(): JournalStore & { value: UploadJournal | null } {
  const store = {
    value: null as UploadJournal | null,
    load: async () => store.value,
    save: async (j: UploadJournal) => void (store.value = structuredClone(j)),
    clear: async () => void (store.value = null),
  };
  return store;
}

interface Call {
  method: string;
  path: string;
  headers: Headers;
}

/** A fetch recording requests; `alter` may lose an answer (throw) or replace it. */
function recording(alter?: (call: Call, res: Response) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const impl: typeof fetch = async (input, init) => {
    const call = { method: init?.method ?? 'GET', path: new URL(String(input)).pathname, headers: new Headers(init?.headers) };
    calls.push(call);
    const res = await fetch(input, init);
    return alter ? alter(call, res) : res;
  };
  return { calls, impl, client: (extra: Partial<ConstructorParameters<typeof OrbitalClient>[0]> = {}) => new OrbitalClient({ server, tokens: owner.api.tokens, fetch: impl, backoffMs: 1, ...extra }) };
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const chunkPuts = (calls: Call[]) => calls.filter((c) => c.method === 'PUT' && /\/chunks\/\d+$/.test(c.path));

describe('uploads', () => {
  it('send chunks with their SHA-256 and resume after a crash, sending only what the server lacks', async (ctx) => {
    needsMedia(ctx);
    const journal = memoryJournal();
    const crash = new AbortController();
    const first = recording();
    const upload = uploadEncryptedFile(first.client(), {
      cipher,
      path: source,
      journal,
      concurrency: 1,
      signal: crash.signal,
      onProgress: (p) => p.chunksDone >= 1 && crash.abort(new Error('simulated crash')),
    });
    await expect(upload).rejects.toThrow('simulated crash');
    const mediaId = journal.value!.media_id!;
    expect(mediaId).toMatch(/^[0-9a-f-]{36}$/);
    for (const put of chunkPuts(first.calls)) expect(put.headers.get('x-chunk-sha256')).toMatch(/^[0-9a-f]{64}$/);

    const status = await owner.api.uploadStatus(mediaId);
    expect(status).toMatchObject({ status: 'uploading', chunk_count: 3 });
    expect(status.received.length).toBeGreaterThanOrEqual(1);

    // A new process: another client, the same journal.
    const second = recording();
    const progress: UploadProgress[] = [];
    const done = await uploadEncryptedFile(second.client(), { cipher, path: source, journal, onProgress: (p) => progress.push(p) });
    expect(done.resumed).toBe(true);
    expect(done.media.id).toBe(mediaId);
    expect(chunkPuts(second.calls).map((c) => Number(c.path.split('/').pop())).sort()).toEqual(status.missing);
    expect(progress[0]!.sentBytes).toBe(status.received.length * CHUNK_SIZE);
    expect(progress.at(-1)).toMatchObject({ sentBytes: 2 * CHUNK_SIZE + 1016, totalBytes: 2 * CHUNK_SIZE + 1016, chunksDone: 3 });
    expect(journal.value).toBeNull();
    uploadedId = mediaId;
  });

  it('a crash before the start request’s answer resumes the same upload through its Idempotency-Key', async (ctx) => {
    needsMedia(ctx);
    const journal = memoryJournal();
    const lost = recording((call, res) => {
      if (call.method === 'POST' && call.path === '/api/media/upload') throw new TypeError('fetch failed (answer lost)');
      return res;
    });
    await expect(uploadEncryptedFile(lost.client({ retries: 0 }), { cipher, path: source, journal })).rejects.toThrow();
    expect(journal.value).toMatchObject({ media_id: null });
    const before = (await owner.api.openUploads()).items.length;
    expect(before).toBe(1);

    const again = recording();
    const done = await uploadEncryptedFile(again.client(), { cipher, path: source, journal });
    expect(again.calls.filter((c) => c.method === 'POST' && c.path === '/api/media/upload')[0]!.headers.get('idempotency-key')).toBe(
      lost.calls.find((c) => c.path === '/api/media/upload')!.headers.get('idempotency-key'),
    );
    expect((await owner.api.openUploads()).items).toEqual([]);
    const listed = await owner.api.listMedia(groupId);
    expect(listed.items.filter((m) => m.id === done.media.id)).toHaveLength(1);
    expect(listed.items).toHaveLength(2); // this one and the first test's: nothing created twice
  });

  it('a chunk that does not match its X-Chunk-SHA256 is refused and not counted', async (ctx) => {
    needsMedia(ctx);
    const started = await owner.api.startUpload({ group_id: groupId, key_epoch: 1, size_bytes: 100, encrypted_metadata: await cipher.seal('metadata', '{}'), encryption_iv: 'AAAAAAAAAAA=' });
    const bytes = randomBytes(100);
    await expect(owner.api.putChunk(started.media_id, 0, bytes, sha(randomBytes(100)))).rejects.toMatchObject({ status: 400, code: 'VALIDATION_ERROR' });
    expect((await owner.api.uploadStatus(started.media_id)).missing).toEqual([0]);
    await owner.api.abortUpload(started.media_id);
  });
});

describe('downloads', () => {
  it('resume a partial plaintext file from its last whole piece with a Range request', async (ctx) => {
    needsMedia(ctx);
    ctx.skip(!uploadedId, 'the upload test did not run');
    const info = await owner.api.mediaInfo(uploadedId!);
    const metadata = await openMediaMetadata(info, await owner.cipher(info.group_id, info.key_epoch));
    expect(metadata).toMatchObject({ name: 'source.bin', size: plain.length });
    const out = join(dir, 'resumed.bin');
    writeFileSync(out, plain.subarray(0, PIECE_SIZE + 12345)); // one whole piece and a torn one
    const rec = recording();
    await downloadEncryptedFile(rec.client(), info, metadata, out);
    const ranges = rec.calls.filter((c) => c.path.endsWith('/download')).map((c) => c.headers.get('range'));
    expect(ranges).toEqual([`bytes=${CHUNK_SIZE}-`]);
    expect(sha(readFileSync(out))).toBe(sha(plain));
  });

  it('pick up after a stream cut mid-way, asking for the rest with If-Range', async (ctx) => {
    needsMedia(ctx);
    ctx.skip(!uploadedId, 'the upload test did not run');
    const info = await owner.api.mediaInfo(uploadedId!);
    const metadata = await openMediaMetadata(info, await owner.cipher(info.group_id, info.key_epoch));
    const cutAt = 3 * 1024 * 1024 + 7;
    let cut = false;
    const rec = recording((call, res) => {
      if (cut || !call.path.endsWith('/download')) return res;
      cut = true;
      const reader = res.body!.getReader();
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { value, done } = await reader.read();
          if (done) return controller.close();
          const room = cutAt - sent;
          if (value.length >= room) {
            controller.enqueue(value.subarray(0, room));
            await reader.cancel();
            return controller.error(new TypeError('terminated'));
          }
          sent += value.length;
          controller.enqueue(value);
        },
      });
      return new Response(body, { status: res.status, headers: res.headers });
    });
    const out = join(dir, 'cut.bin');
    await downloadEncryptedFile(rec.client(), info, metadata, out);
    const downloads = rec.calls.filter((c) => c.path.endsWith('/download'));
    expect(downloads).toHaveLength(2);
    expect(downloads[1]!.headers.get('range')).toBe(`bytes=${cutAt}-`);
    expect(downloads[1]!.headers.get('if-range')).toBeTruthy();
    expect(sha(readFileSync(out))).toBe(sha(plain));
  });

  it('raw ciphertext resumes from the file’s length, and any chunk of it decrypts alone', async (ctx) => {
    needsMedia(ctx);
    ctx.skip(!uploadedId, 'the upload test did not run');
    const info = await owner.api.mediaInfo(uploadedId!);
    const whole = join(dir, 'whole.enc');
    await downloadRaw(owner.api, info.id, whole);
    const ciphertext = readFileSync(whole);
    expect(ciphertext.length).toBe(info.size_bytes);
    expect(ciphertext.includes(plain.subarray(0, 64))).toBe(false);

    const part = join(dir, 'part.enc');
    writeFileSync(part, ciphertext.subarray(0, 1_000_000));
    const rec = recording();
    await downloadRaw(rec.client(), info.id, part, { totalBytes: info.size_bytes });
    expect(rec.calls.map((c) => c.headers.get('range'))).toEqual(['bytes=1000000-']);
    expect(sha(readFileSync(part))).toBe(sha(ciphertext));

    const metadata = await openMediaMetadata(info, await owner.cipher(info.group_id, info.key_epoch));
    const fileCipher = await FileCipher.create(metadata, info.id, pieceCount(metadata.size));
    const middle = await fileCipher.decryptChunk(1, ciphertext.subarray(CHUNK_SIZE, 2 * CHUNK_SIZE));
    expect(sha(middle)).toBe(sha(plain.subarray(PIECE_SIZE, 2 * PIECE_SIZE)));
  });
});
