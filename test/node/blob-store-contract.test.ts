// The BlobStore contract on Node: the disk store, and the S3-compatible store against a real S3
// server (test/support/s3-server.ts; skipped with one line when none is available).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { AwsClient } from 'aws4fetch';
import { describe, expect, it } from 'vitest';
import { fsBlobStore } from '../../src/adapters/blob-fs';
import { s3BlobStore, type S3Options } from '../../src/adapters/blob-s3';
import { PartDigestError, PartSizeError, type BlobStore } from '../../src/deps';
import { ConfigError, parseConfig } from '../../src/config';
import { blobStoreContract } from '../support/blob-contract';
import { startTestS3 } from '../support/s3-server';

blobStoreContract('disk', async () => {
  const root = mkdtempSync(join(tmpdir(), 'orbital-blobs-'));
  return { store: fsBlobStore(root), close: async () => rmSync(root, { recursive: true, force: true }) };
});

describe('disk store: a manifest it did not write', () => {
  it('is read as no object when it names a file outside its folder or a size that is no count', async () => {
    const root = mkdtempSync(join(tmpdir(), 'orbital-blobs-'));
    try {
      writeFileSync(join(root, 'secret'), 'jwt secret');
      const store = fsBlobStore(root);
      const key = 'media/crafted/one';
      mkdirSync(join(root, 'objects', key), { recursive: true });
      for (const parts of [[{ file: '../../../../secret', size: 10 }], [{ file: `000000.${'a'.repeat(64)}.part`, size: '10' }], 'all']) {
        writeFileSync(join(root, 'objects', key, 'manifest.json'), JSON.stringify({ parts }));
        expect(await store.get(key)).toBeNull();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

let s3: S3Options | null = null;
blobStoreContract('s3', async () => {
  const { server, reason } = await startTestS3();
  if (!server) return { unavailable: reason };
  s3 = server.options;
  return { store: s3BlobStore(server.options), close: () => server.close() };
});

describe('S3 store: refused parts', () => {
  it('never reach the store: the upload lists no part after a wrong size or digest', async (ctx) => {
    if (!s3) return ctx.skip('no S3 server');
    const store = s3BlobStore(s3);
    const key = `media/refused/${randomUUID()}`;
    const handle = (await store.createUpload(key))!;
    const bytes = crypto.getRandomValues(new Uint8Array(60_000));
    const stream = (b: Uint8Array) => new Blob([b as Uint8Array<ArrayBuffer>]).stream();
    await expect(store.putPart(key, handle, 0, stream(bytes), bytes.length, '00'.repeat(32))).rejects.toBeInstanceOf(PartDigestError);
    await expect(store.putPart(key, handle, 1, stream(bytes.subarray(1)), bytes.length)).rejects.toBeInstanceOf(PartSizeError);
    // ListParts, straight from the server.
    const client = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, service: 's3', region: s3.region });
    const listed = await (await client.fetch(`${s3.endpoint}/${s3.bucket}/${key}?uploadId=${encodeURIComponent(handle)}`)).text();
    expect(listed).toContain('ListPartsResult');
    expect(listed).not.toContain('<Part>');
    await store.abortUpload(key, handle);
  });
});

// On Node the chunk route hands a store the request itself (src/http/request-body.ts), not a web stream.
describe("a part read from Node's request itself (an async iterable of Buffers)", () => {
  const pieces = (b: Uint8Array) => Readable.from([Buffer.from(b.subarray(0, 30_000)), Buffer.from(b.subarray(30_000))]);
  async function roundTrip(store: BlobStore) {
    const key = `media/node-body/${randomUUID()}`;
    const handle = await store.createUpload(key);
    const bytes = crypto.getRandomValues(new Uint8Array(60_000));
    const digest = createHash('sha256').update(bytes).digest('hex');
    await expect(store.putPart(key, handle, 0, pieces(bytes.subarray(1)), bytes.length)).rejects.toBeInstanceOf(PartSizeError);
    await expect(store.putPart(key, handle, 0, pieces(bytes), bytes.length, '00'.repeat(32))).rejects.toBeInstanceOf(PartDigestError);
    const part = await store.putPart(key, handle, 0, pieces(bytes), bytes.length, digest);
    await store.completeUpload(key, handle, [{ index: 0, etag: part.etag }], [bytes.length]);
    const stored = await store.get(key);
    expect(Buffer.from(await new Response(stored!.body).arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);
  }

  it('disk', async () => {
    const root = mkdtempSync(join(tmpdir(), 'orbital-blobs-'));
    try {
      await roundTrip(fsBlobStore(root));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('s3', async (ctx) => {
    if (!s3) return ctx.skip('no S3 server');
    await roundTrip(s3BlobStore(s3));
  });
});

describe('BLOB_STORE=s3 configuration', () => {
  it('names the first missing S3 setting in one line', () => {
    const env = { JWT_SECRET: 'x'.repeat(32), BLOB_STORE: 's3', S3_ENDPOINT: 'http://127.0.0.1:9000', S3_BUCKET: 'media', S3_ACCESS_KEY_ID: 'key' };
    expect(() => parseConfig(env)).toThrow(new ConfigError('Invalid configuration: S3_SECRET_ACCESS_KEY is required when BLOB_STORE=s3'));
    expect(() => parseConfig({ ...env, S3_ENDPOINT: 'not a url' })).toThrow(/S3_ENDPOINT/);
    expect(parseConfig({ ...env, S3_SECRET_ACCESS_KEY: 'secret' })).toMatchObject({ BLOB_STORE: 's3', S3_REGION: 'us-east-1', S3_FORCE_PATH_STYLE: false });
  });
});
