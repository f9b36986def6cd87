// The BlobStore contract on Node: the disk store, and the S3-compatible store against a real S3
// server (test/support/s3-server.ts; skipped with one line when none is available).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fsBlobStore } from '../../src/adapters/blob-fs';
import { s3BlobStore } from '../../src/adapters/blob-s3';
import { ConfigError, parseConfig } from '../../src/config';
import { blobStoreContract } from '../support/blob-contract';
import { startTestS3 } from '../support/s3-server';

blobStoreContract('disk', async () => {
  const root = mkdtempSync(join(tmpdir(), 'orbital-blobs-'));
  return { store: fsBlobStore(root), close: async () => rmSync(root, { recursive: true, force: true }) };
});

blobStoreContract('s3', async () => {
  const { server, reason } = await startTestS3();
  if (!server) return { unavailable: reason };
  return { store: s3BlobStore(server.options), close: () => server.close() };
});

describe('BLOB_STORE=s3 configuration', () => {
  it('names the first missing S3 setting in one line', () => {
    const env = { JWT_SECRET: 'x'.repeat(32), BLOB_STORE: 's3', S3_ENDPOINT: 'http://127.0.0.1:9000', S3_BUCKET: 'media', S3_ACCESS_KEY_ID: 'key' };
    expect(() => parseConfig(env)).toThrow(new ConfigError('Invalid configuration: S3_SECRET_ACCESS_KEY is required when BLOB_STORE=s3'));
    expect(() => parseConfig({ ...env, S3_ENDPOINT: 'not a url' })).toThrow(/S3_ENDPOINT/);
    expect(parseConfig({ ...env, S3_SECRET_ACCESS_KEY: 'secret' })).toMatchObject({ BLOB_STORE: 's3', S3_REGION: 'us-east-1', S3_FORCE_PATH_STYLE: false });
  });
});
