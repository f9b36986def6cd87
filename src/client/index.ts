// The Orbital relay client on Node (the CLI's): the portable client (portable.ts) plus file
// uploads and resumable downloads to disk, and live subscriptions over the `ws` package.
import WebSocket from 'ws';
import { subscribe as subscribeWith, type LiveOptions, type LiveSubscription, type WebSocketClass } from './live';
import type { OrbitalClient } from './api';

export * from './portable';
export { downloadRaw, downloadDecrypted, type DownloadProgress } from './download';
export { uploadEncryptedFile, downloadEncryptedFile, openMediaMetadata, type UploadJournal, type JournalStore } from './media-files';

/**
 * After the server's close frame (answered at once), how long `ws` waits for the server to end the
 * connection before dropping it. Nothing can follow a close frame: on Workers the runtime keeps
 * the TCP connection of a socket its Durable Object closed until the idle object is evicted, about
 * 10 s later (README, "Live sockets on Workers"). Browsers bound this wait themselves.
 */
const CLOSE_GRACE_MS = 500;

/** `ws` with that bound; `closeTimeout` (ws 8.23) is not in @types/ws. */
class NodeWebSocket extends WebSocket {
  constructor(url: string) {
    super(url, { closeTimeout: CLOSE_GRACE_MS } as WebSocket.ClientOptions);
  }
}

/** subscribe() with `ws` as the WebSocket (Node 20 has no global one). */
export function subscribe(client: OrbitalClient, groupId: string, options: LiveOptions): LiveSubscription {
  return subscribeWith(client, groupId, { WebSocket: NodeWebSocket as unknown as WebSocketClass, ...options });
}
