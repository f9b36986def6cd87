// The Orbital relay client on Node (the CLI's): the portable client (portable.ts) plus file
// uploads and resumable downloads to disk, and live subscriptions over the `ws` package.
import WebSocket from 'ws';
import { subscribe as subscribeWith, type LiveOptions, type LiveSubscription, type WebSocketClass } from './live';
import type { OrbitalClient } from './api';

export * from './portable';
export { downloadRaw, downloadDecrypted, type DownloadProgress } from './download';
export { uploadEncryptedFile, downloadEncryptedFile, openMediaMetadata, type UploadJournal, type JournalStore } from './media-files';

/** subscribe() with `ws` as the WebSocket (Node 20 has no global one). */
export function subscribe(client: OrbitalClient, groupId: string, options: LiveOptions): LiveSubscription {
  return subscribeWith(client, groupId, { WebSocket: WebSocket as unknown as WebSocketClass, ...options });
}
