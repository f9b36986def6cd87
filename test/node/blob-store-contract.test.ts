// The BlobStore contract on Node: the disk store, and the S3-compatible store against a real S3
// server (test/support/s3-server.ts; skipped with one line when none is available).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fsBlobStore } from '../../src/adapters/blob-fs';
import { s3BlobStore } from '../../src/adapters/blob-s3';
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
