// The BlobStore contract on R2 (miniflare's R2 inside workerd), as the Worker uses it.
import { env } from 'cloudflare:test';
import { r2BlobStore } from '../../src/adapters/blob-r2';
import type { WorkerEnv } from '../../src/runtime/worker-deps';
import { blobStoreContract } from '../support/blob-contract';

blobStoreContract('r2', async () => ({ store: r2BlobStore((env as unknown as WorkerEnv).MEDIA), close: async () => {} }));
