// Serves the app on Node: HTTP (+ WebSocket upgrade) with graceful shutdown.
import type { AddressInfo } from 'node:net';
import { createServer, IncomingMessage, ServerResponse, STATUS_CODES, type Server } from 'node:http';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { getRequestListener, type Http2Bindings, type HttpBindings } from '@hono/node-server';
import { WebSocketServer } from 'ws';
import { createApp } from '../app';
import { unreadableRequest } from '../http/errors';
import { PARSER_REFUSALS } from '../http/openapi';
import type { Deps } from '../deps';
import { ACCEPT_SOCKET, type SocketAcceptor } from '../adapters/live-node';
import { LIVE } from '../domain/live/protocol';
import { drainThenClose, lingerAfterEarlyAnswer, type LingerBounds } from './lingering-close';

/** One line for the operator instead of an unhandled 'error' event's stack. */
export class PortInUse extends Error {
  constructor(port: number, host: string) {
    super(`Port ${port} on ${host} is already in use (another server?): stop it, or set PORT to a free port.`);
  }
}

const LISTEN_BACKLOG = 65_535;

export interface RunningServer {
  url: string;
  server: Server;
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
  const linger: LingerBounds = { maxBytes: 2 * deps.config.chunkSize, maxMs: 5_000 };
  /** Each connection's latest response (set as its request is parsed): a request given back to the HTTP server waits for it. */
  const answering = new WeakMap<Duplex, ServerResponse>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: LIVE.maxFrameBytes });
  const fetch = async (request: Request, env: HttpBindings | Http2Bindings) => {
    const res = await app.fetch(request, env);
    // Answered before the request body arrived (refused by auth, params or a cap): the rest of the
    // body is never read, so the connection cannot carry another request. Saying so lets the
    // client open a new one; otherwise node-server drops it later under a request in flight.
    if (env.incoming && !env.incoming.complete) {
      if (!res.headers.has('Connection')) res.headers.set('Connection', 'close');
      // …and reads the rest before closing, so the client gets this answer and not a reset.
      if (env.incoming instanceof IncomingMessage) lingerAfterEarlyAnswer(env.incoming, linger);
    }
    return res;
  };
  const server = await new Promise<Server>((resolve, reject) => {
    const serverOptions = {
      // Never endless: a client that stalls mid-request (slow loris) loses its connection.
      requestTimeout: timeouts.requestMs ?? 10 * 60_000,
      headersTimeout: timeouts.headersMs ?? 60_000,
      connectionsCheckingInterval: timeouts.checkEveryMs ?? 30_000,
    };
    // A request no URL can be made of (`OPTIONS *`, a Host that is no host name) is refused in the
    // contract's shape, not with node-server's empty 400.
    const listener = getRequestListener(fetch, { hostname: host, errorHandler: () => unreadableRequest() });
    // A request parsed on a connection already refused (pipelined behind a timed-out one) is not
    // run: its answer could never be sent, and the client takes the refusal as "not done".
    const s = createServer(serverOptions, (request, response) => (refused.has(request.socket) ? undefined : listener(request, response)));
    // An idle keep-alive connection outlives a balancer's or proxy's own idle timeout (HAProxy
    // and nginx keep theirs well under a minute): closed here first, at Node's 5 s default, it
    // raced a request the balancer was just sending on it, which then failed as a 502.
    s.keepAliveTimeout = 65_000;
    s.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, answering.get(socket), linger));
    // Node's default queue of 511 unaccepted connections overflows when thousands of clients
    // reconnect at once (a restart): the kernel drops their SYNs, and each retries after 1, 3, 7,
    // 15, 31 s. The kernel caps this at net.core.somaxconn (4096 here; docs/OPERATIONS.md).
    s.listen({ port, host, backlog: LISTEN_BACKLOG }, () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new PortInUse(port, host) : err));
  });
  let closing = false;
  server.on('request', (request: IncomingMessage, response: ServerResponse) => answering.set(request.socket, response));
  // Node 20 hands every request with an Upgrade header here, its body unread. Only a WebSocket
  // handshake stays; any other (h2c from curl --http2, a made-up protocol) goes back to the HTTP
  // server as the plain request it is: its body read, its answer streamed, as on any connection.
  // Pipelined behind a request still being answered, its answer goes first, from the old parser,
  // which lets go of the socket when that answer closes (not when its bytes are out: an answer
  // Node writes at once, as to `OPTIONS *`, is out before its parser is done with it).
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node took its own error listener off the socket as it emitted 'upgrade', and an answer
    // still being written ahead of this request can fail (a client's reset) before it is our turn.
    socket.on('error', ignoreError);
    afterAnswered(answering.get(socket), () => {
      if (socket.destroyed) return;
      if (isWebSocketHandshake(request)) void upgrade(app, wss, request, socket, head, () => closing);
      else servePlain(server, request, socket, head);
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost === '0.0.0.0' || shownHost === '[::]' ? '127.0.0.1' : shownHost}:${address.port}`,
    server,
    wss,
    async close() {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const client of wss.clients) client.close(1001, 'server shutting down');
      server.closeIdleConnections();
      const forced = setTimeout(() => {
        for (const client of wss.clients) client.terminate();
        server.closeAllConnections();
      }, 10_000);
      await closed;
      clearTimeout(forced);
      wss.close();
      await deps.stop?.();
    },
  };
}

/**
 * On an upgraded socket for its life (a client gone mid-handshake, or while an earlier answer is
 * written): defined out here, since a closure made in the upgrade's scope would hold the
 * handshake request and the read buffer its `head` views (~2.5 KiB per idle socket).
 */
const ignoreError = () => {};

/**
 * A WebSocket upgrade: the app decides (auth, membership, the socket cap) as for any request; when
 * its live route accepted, the handshake completes here, otherwise its answer is written in full.
 */
async function upgrade(app: ReturnType<typeof createApp>, wss: WebSocketServer, request: IncomingMessage, socket: Duplex, head: Buffer, closing: () => boolean): Promise<void> {
  // Only a handshake `ws` will complete gets here, so the live route may take it (using up its ticket).
  const env: Record<string | symbol, unknown> = { incoming: request, outgoing: undefined, [ACCEPT_SOCKET]: undefined };
  let res: Response;
  try {
    const headers = new Headers();
    for (const [key, value] of Object.entries(request.headers)) if (value !== undefined) headers.append(key, Array.isArray(value) ? value.join(', ') : value);
    res = await app.fetch(new Request(new URL(request.url ?? '/', `http://${request.headers.host ?? 'localhost'}`), { method: request.method, headers }), env);
  } catch {
    res = unreadableRequest();
  }
  const acceptor = env[ACCEPT_SOCKET] as SocketAcceptor | undefined;
  if (!acceptor) return writeAnswer(socket, res);
  if (socket.destroyed) return acceptor.lost();
  socket.once('close', acceptor.lost); // before the handshake completes; after it, the socket's own close
  wss.handleUpgrade(request, socket, head, (ws) => {
    socket.off('close', acceptor.lost);
    acceptor.open(ws);
    // Let in while the server was closing its sockets: it goes the way they went.
    if (closing()) ws.close(1001, 'server shutting down');
  });
}

const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const PROTOCOL_LIST = new RegExp(`^${TOKEN}(?:[ \\t]*,[ \\t]*${TOKEN})*$`);

/**
 * What `ws` checks before it completes a handshake (RFC 6455 4.2.1; its handleUpgrade), so that it
 * never refuses one the app has accepted. No compression is offered, so extensions are not read.
 */
function isWebSocketHandshake(request: IncomingMessage): boolean {
  const { upgrade, 'sec-websocket-key': key, 'sec-websocket-version': version, 'sec-websocket-protocol': protocol } = request.headers;
  const protocols = protocol?.split(',').map((p) => p.trim());
  return (
    request.method === 'GET' &&
    upgrade?.toLowerCase() === 'websocket' &&
    typeof key === 'string' &&
    /^[+/0-9A-Za-z]{22}==$/.test(key) &&
    [8, 13].includes(Number(version)) &&
    (protocol === undefined || (PROTOCOL_LIST.test(protocol) && new Set(protocols).size === protocols!.length))
  );
}

/**
 * A request that is no WebSocket handshake, given back to the HTTP server on its own connection:
 * its head written again without the upgrade, ahead of the body bytes already read.
 */
function servePlain(server: Server, request: IncomingMessage, socket: Duplex, head: Buffer): void {
  const lines = [`${request.method} ${request.url} HTTP/${request.httpVersion}`];
  const raw = request.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const [name, value] = [raw[i]!, raw[i + 1]!];
    if (/^upgrade$/i.test(name)) continue;
    if (/^connection$/i.test(name)) {
      const kept = value.split(',').map((token) => token.trim()).filter((token) => token && !/^upgrade$/i.test(token));
      if (kept.length) lines.push(`${name}: ${kept.join(', ')}`);
      continue;
    }
    lines.push(`${name}: ${value}`);
  }
  socket.unshift(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), head]));
  server.emit('connection', socket);
}

function afterAnswered(previous: ServerResponse | undefined, then: () => void): void {
  if (previous && !previous.closed) previous.once('close', then);
  else then();
}

/** What Node answers a request it could not parse (its own statuses), in the contract's shape. */
const CLIENT_ERROR_STATUS: Record<string, [number, string]> = {
  // The document's shared responses (every operation points at them), and one a body's 413 covers.
  ...Object.fromEntries(Object.values(PARSER_REFUSALS).map((r) => [r.nodeCode, [r.status, r.message]])),
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'The chunk extensions are too large.'],
};

/** Sockets whose refusal is answered: Node's parser repeats a parse error for every later read. */
const refused = new WeakSet<Duplex>();

function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, previous: ServerResponse | undefined, linger: LingerBounds): void {
  // Bytes after a request that closed the connection go unanswered (RFC 9112 9.6); that request's
  // own answer still goes out, and the connection closes after it (Node's default sent a bare 400
  // instead of it).
  if (err.code === 'HPE_CLOSED_CONNECTION') return;
  // Already answered: what still arrives (the rest of oversized headers) is dropped by the linger.
  // Cutting here lost the answer being written (the client saw "other side closed", not its 431).
  if (refused.has(socket)) return;
  // An answer part-sent on it (a stalled upload's, timed out): nothing well-formed can follow.
  // (A keep-alive connection's earlier answers, finished, do not count.)
  const inFlight = previous && !previous.writableFinished ? previous : undefined;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) return void socket.destroy();
  refused.add(socket);
  const [status, message] = CLIENT_ERROR_STATUS[err.code ?? ''] ?? [400, 'The request could not be parsed.'];
  // A timed-out request must not complete after its 408 (its handler would run, unanswered), so
  // the connection closes as soon as the answer is out, without a linger: a client that stalled
  // has nothing in flight that a close could reset. A parse error stops the parser for good.
  const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const answer = () => {
    if (!socket.writable) return void socket.destroy();
    void writeAnswer(socket, unreadableRequest(status, message)).then(() => (timedOut ? socket.destroy() : drainThenClose(socket, linger)));
  };
  // Behind a whole request still being answered (pipelined), after its answer, as HTTP orders
  // them; the refusal of the request in flight itself (its body bad or stalled) goes now.
  if (inFlight?.req.complete) afterAnswered(inFlight, answer);
  else answer();
}

/**
 * An answer written straight to the socket, where no response object exists (a handshake the app
 * did not take, a request Node could not parse): streamed (a download can be large), then the
 * connection closes.
 */
async function writeAnswer(socket: Duplex, res: Response): Promise<void> {
  if (socket.destroyed) return void res.body?.cancel().catch(() => {});
  const lines = [`HTTP/1.1 ${res.status} ${STATUS_CODES[res.status] ?? ''}`];
  res.headers.forEach((value, key) => {
    if (!['connection', 'transfer-encoding', 'keep-alive'].includes(key)) lines.push(`${key}: ${value}`);
  });
  // Without a length the body ends where the connection does.
  lines.push('Connection: close');
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  if (!res.body) return void socket.end();
  await pipeline(Readable.fromWeb(res.body as NodeReadableStream), socket).catch(() => socket.destroy());
}
