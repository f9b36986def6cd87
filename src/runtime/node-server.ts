// Serves the app on Node: HTTP (+ WebSocket upgrade) with graceful shutdown.
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { WebSocketServer } from 'ws';
import { createApp } from '../app';
import type { Deps } from '../deps';

export interface RunningServer {
  url: string;
  server: ServerType;
  wss: WebSocketServer;
  /** Stops accepting, closes sockets with 1001, waits for in-flight requests. */
  close(): Promise<void>;
}

export async function startServer(deps: Deps, port: number, host: string): Promise<RunningServer> {
  const app = createApp(deps);
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port, hostname: host, websocket: { server: wss } }, () => resolve(s));
  });
  // Uploads of 5 MiB chunks on slow links: generous, but never endless.
  if ('requestTimeout' in server) {
    server.requestTimeout = 10 * 60_000;
    server.headersTimeout = 60_000;
  }
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost === '0.0.0.0' || shownHost === '[::]' ? '127.0.0.1' : shownHost}:${address.port}`,
    server,
    wss,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const client of wss.clients) client.close(1001, 'server shutting down');
      if ('closeIdleConnections' in server) server.closeIdleConnections();
      const forced = setTimeout(() => {
        for (const client of wss.clients) client.terminate();
        if ('closeAllConnections' in server) server.closeAllConnections();
      }, 10_000);
      await closed;
      clearTimeout(forced);
      wss.close();
    },
  };
}
