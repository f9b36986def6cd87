// The client for apps: everything that runs wherever fetch, WebSocket and WebCrypto exist
// (browsers, Electron's renderer, Node 22+, workers). Built to dist/client as the package's
// `./client` export; no Node module may be imported from here (test/node/client-package.test.ts).
export { OrbitalClient, paginate, type CreateOptions } from './api';
export { ApiError, NetworkError } from './errors';
export { Transport, type TokenPair, type TransportOptions } from './http';
export * from './crypto';
export { SecureClient, KeyMissingError, type Identity, type DeliveryResult } from './secure';
export { sendChunks, sha256Hex, type ChunkSource, type UploadProgress } from './upload';
export { subscribe, type LiveOptions, type LiveSubscription, type LiveStatus, type WebSocketClass, type WebSocketLike } from './live';
export type * from './types';
