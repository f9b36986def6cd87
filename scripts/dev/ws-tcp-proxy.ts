// A WebSocket-to-TCP proxy, as Neon's own proxy does it: lets the Neon serverless driver inside
// workerd reach a plain Postgres (or PGlite over the wire protocol) on this machine. Used by
// `npm run dev:worker` and the workerd test project. A plain TCP variant stands where Hyperdrive
// would (tests), so both database paths can be gated (PGlite) and metered the same way.
import { createRequire } from 'node:module';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { createSessionGate } from './session-gate';

// A globalSetup of a Workers project resolves `ws` to its browser build; load the Node one.
const { WebSocketServer } = createRequire(import.meta.url)('ws') as typeof import('ws');

/** The frontend Terminate message: 'X' and the length 4. */
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

/** Sees every byte of every proxied connection (tests count round trips with it). */
export interface TrafficMeter {
  connection(): { fromClient(data: Buffer): void; fromServer(data: Buffer): void };
}

export interface ProxyOptions {
  /** One transaction at a time across connections, shared by every proxy in front of one PGlite (session-gate.ts). */
  gate?: Gate;
  meter?: TrafficMeter;
}

export interface RunningProxy {
  /** host:port */
  address: string;
  close(): Promise<void>;
}

type Gate = ReturnType<typeof createSessionGate>;

/** One client connection's path to the database; `send` goes back to the client. */
function openUpstream(host: string, port: number, gate: Gate | null, meter: TrafficMeter | undefined, send: (data: Buffer) => void, closed: () => void) {
  const tcp = net.connect({ host, port });
  const seen = meter?.connection();
  const forward = (bytes: Buffer) => {
    tcp.write(bytes);
    // Postgres closes the connection on a Terminate message; PGlite's socket server does not,
    // and the driver inside workerd never closes its WebSocket, so each request would keep
    // one of PGlite's connection slots forever. End it here as Postgres would.
    if (bytes.length >= 5 && bytes.subarray(-5).equals(TERMINATE)) tcp.end();
  };
  const gated = gate?.connect(forward);
  tcp.on('data', (data) => {
    seen?.fromServer(data);
    gated?.fromServer(data);
    send(data);
  });
  tcp.on('close', () => {
    gated?.close();
    closed();
  });
  tcp.on('error', () => closed());
  return {
    fromClient(data: Buffer) {
      seen?.fromClient(data);
      if (gated) gated.fromClient(data);
      else forward(data);
    },
    destroy: () => tcp.destroy(),
  };
}

function listening(server: net.Server | InstanceType<typeof WebSocketServer>, close: (done: () => void) => void): Promise<RunningProxy> {
  return new Promise((resolve) =>
    server.once('listening', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ address: `127.0.0.1:${port}`, close: () => new Promise<void>((done) => close(() => done())) });
    }),
  );
}

export async function startWsTcpProxy(allowed: (host: string, port: number) => boolean, options: ProxyOptions = {}): Promise<RunningProxy> {
  const gate = options.gate ?? null;
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('connection', (ws, req) => {
    const address = new URL(req.url ?? '/', 'http://proxy').searchParams.get('address') ?? '';
    const [host, portText] = address.split(':');
    const port = Number(portText);
    if (!host || !port || !allowed(host, port)) return ws.close(1008, 'address not allowed');
    const upstream = openUpstream(host, port, gate, options.meter, (data) => ws.readyState === ws.OPEN && ws.send(data), () => ws.close());
    ws.on('message', (data) => upstream.fromClient(data as Buffer));
    ws.on('close', () => upstream.destroy());
    ws.on('error', () => upstream.destroy());
  });
  return listening(wss, (done) => wss.close(done));
}

/** Plain TCP to one database address (where Hyperdrive's local connection string points in tests). */
export async function startTcpProxy(host: string, port: number, options: ProxyOptions = {}): Promise<RunningProxy> {
  const gate = options.gate ?? null;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    const upstream = openUpstream(host, port, gate, options.meter, (data) => client.write(data), () => client.end());
    client.on('data', (data) => upstream.fromClient(data));
    client.on('close', () => (sockets.delete(client), upstream.destroy()));
    client.on('error', () => upstream.destroy());
  });
  server.listen(0, '127.0.0.1');
  return listening(server, (done) => {
    for (const socket of sockets) socket.destroy();
    server.close(done);
  });
}
