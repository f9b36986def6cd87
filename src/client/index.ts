// The Orbital relay client: typed calls for the whole contract (api.ts), Client profile v1
// encryption (crypto.ts, secure.ts), chunked uploads, resumable downloads and live events.
export { OrbitalClient, paginate, type CreateOptions } from './api';
export { ApiError, NetworkError } from './errors';
export { Transport, type TokenPair, type TransportOptions } from './http';
export * from './crypto';
export { SecureClient, KeyMissingError, type Identity, type DeliveryResult } from './secure';
export { sendChunks, sha256Hex, type ChunkSource, type UploadProgress } from './upload';
export { downloadRaw, downloadDecrypted, type DownloadProgress } from './download';
export { uploadEncryptedFile, downloadEncryptedFile, openMediaMetadata, type UploadJournal, type JournalStore } from './media-files';
export { subscribe, type LiveOptions, type LiveSubscription, type LiveStatus } from './live';
export type * from './types';
