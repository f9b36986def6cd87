// Serves the app on Node: HTTP (+ WebSocket upgrade) with graceful shutdown.
import type { AddressInfo } from 'node:net';
import { IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { createAdaptorServer, type Http2Bindings, type HttpBindings, type ServerType } from '@hono/node-server';
import { WebSocketServer } from 'ws';
import { createApp } from '../app';
import type { Deps } from '../deps';
import { ACCEPT_SOCKET, type SocketAcceptor } from '../adapters/live-node';
import { LIVE } from '../domain/live/protocol';
import { lingerAfterEarlyAnswer } from './lingering-close';

/** One line for the operator instead of an unhandled 'error' event's stack. */
export class PortInUse extends Error {
  constructor(port: number, host: string) {
    super(`Port ${port} on ${host} is already in use (another server?): stop it, or set PORT to a free port.`);
  }
}

const LISTEN_BACKLOG = 65_535;

export interface RunningServer {
  url: string;
  server: ServerType;
  wss: WebSocketServer;
  /** Stops accepting, closes sockets with 1001, waits for in-flight requests. */
  close(): Promise<void>;
}

/** How long a client may take to send a request; defaults suit 5 MiB chunks on slow links. */
export interface RequestTimeouts {
  /** The whole request, headers and body (default 10 min). */
  requestMs?: number;
  /** The headers alone (default 60 s; at most requestMs). */
  headersMs?: number;
  /** How often Node checks these deadlines (default 30 s): a stalled request goes within requestMs plus this. */
  checkEveryMs?: number;
}

export async function startServer(
  deps: Deps & { stop?(): Promise<void> },
  port: number,
  host: string,
  timeouts: RequestTimeouts = {},
): Promise<RunningServer> {
  const app = createApp(deps);
  const wss = new WebSocketServer({ noServer: true, maxPayload: LIVE.maxFrameBytes });
  const fetch = async (request: Request, env: HttpBindings | Http2Bindings) => {
    const res = await app.fetch(request, env);
    // Answered before the request body arrived (refused by auth, params or a cap): the rest of the
    // body is never read, so the connection cannot carry another request. Saying so lets the
    // client open a new one; otherwise node-server drops it later under a request in flight.
    if (env.incoming && !env.incoming.complete) {
      if (!res.headers.has('Connection')) res.headers.set('Connection', 'close');
      // …and reads the rest before closing, so the client gets this answer and not a reset.
      if (env.incoming instanceof IncomingMessage) lingerAfterEarlyAnswer(env.incoming, { maxBytes: 2 * deps.config.chunkSize, maxMs: 5_000 });
    }
    return res;
  };
  const server = await new Promise<ServerType>((resolve, reject) => {
    const serverOptions = {
      // Never endless: a client that stalls mid-request (slow loris) loses its connection.
      requestTimeout: timeouts.requestMs ?? 10 * 60_000,
      headersTimeout: timeouts.headersMs ?? 60_000,
      connectionsCheckingInterval: timeouts.checkEveryMs ?? 30_000,
    };
    const s = createAdaptorServer({ fetch, hostname: host, serverOptions });
    // An idle keep-alive connection outlives a balancer's or proxy's own idle timeout (HAProxy
    // and nginx keep theirs well under a minute): closed here first, at Node's 5 s default, it
    // raced a request the balancer was just sending on it, which then failed as a 502.
    if ('keepAliveTimeout' in s) s.keepAliveTimeout = 65_000;
    // Node's default queue of 511 unaccepted connections overflows when thousands of clients
    // reconnect at once (a restart): the kernel drops their SYNs, and each retries after 1, 3, 7,
    // 15, 31 s. The kernel caps this at net.core.somaxconn (4096 here; docs/OPERATIONS.md).
    s.listen({ port, host, backlog: LISTEN_BACKLOG }, () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new PortInUse(port, host) : err));
  });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => void upgrade(app, wss, request, socket, head));
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
      await deps.stop?.();
    },
  };
}

/**
 * A WebSocket upgrade: the app decides (auth, membership, the socket cap) as for any request; when
 * its live route accepted, the handshake completes here, otherwise its answer is written in full.
 */
async function upgrade(app: ReturnType<typeof createApp>, wss: WebSocketServer, request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  socket.on('error', () => {}); // a client gone mid-handshake
  const env: Record<string | symbol, unknown> = { incoming: request, outgoing: undefined, [ACCEPT_SOCKET]: undefined };
  let res: Response;
  try {
    const headers = new Headers();
    for (const [key, value] of Object.entries(request.headers)) if (value !== undefined) headers.append(key, Array.isArray(value) ? value.join(', ') : value);
    res = await app.fetch(new Request(new URL(request.url ?? '/', `http://${request.headers.host ?? 'localhost'}`), { headers }), env);
  } catch {
    res = new Response(null, { status: 400 }); // a request line or Host no URL can be made of
  }
  const acceptor = env[ACCEPT_SOCKET] as SocketAcceptor | undefined;
  if (!acceptor) return writeRefusal(socket, res);
  if (socket.destroyed) return acceptor.lost();
  socket.once('close', acceptor.lost); // before the handshake completes; after it, the socket's own close
  wss.handleUpgrade(request, socket, head, (ws) => {
    socket.off('close', acceptor.lost);
    acceptor.open(ws);
  });
}

async function writeRefusal(socket: Duplex, res: Response): Promise<void> {
  const body = Buffer.from(await res.arrayBuffer());
  if (socket.destroyed) return;
  const lines = [`HTTP/1.1 ${res.status} ${STATUS_CODES[res.status] ?? ''}`];
  res.headers.forEach((value, key) => {
    if (!['connection', 'content-length', 'transfer-encoding', 'keep-alive'].includes(key)) lines.push(`${key}: ${value}`);
  });
  lines.push('Connection: close', `Content-Length: ${body.length}`);
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), body]));
}
