// A WebSocket-to-TCP proxy, as Neon's own proxy does it: lets the Neon serverless driver inside
// workerd reach a plain Postgres (or PGlite over the wire protocol) on this machine.
import { createRequire } from 'node:module';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createSessionGate } from './session-gate';

// A globalSetup of a Workers project resolves `ws` to its browser build; load the Node one.
const { WebSocketServer } = createRequire(import.meta.url)('ws') as typeof import('ws');

/** The frontend Terminate message: 'X' and the length 4. */
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

export async function startWsTcpProxy(
  allowed: (host: string, port: number) => boolean,
  options: { /** One transaction at a time across connections (PGlite: see session-gate.ts). */ serialize?: boolean } = {},
) {
  const gate = options.serialize ? createSessionGate() : null;
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('connection', (ws, req) => {
    const address = new URL(req.url ?? '/', 'http://proxy').searchParams.get('address') ?? '';
    const [host, portText] = address.split(':');
    const port = Number(portText);
    if (!host || !port || !allowed(host, port)) return ws.close(1008, 'address not allowed');
    const tcp = net.connect({ host, port });
    const forward = (bytes: Buffer) => {
      tcp.write(bytes);
      // Postgres closes the connection on a Terminate message; PGlite's socket server does not,
      // and the driver inside workerd never closes its WebSocket, so each request would keep
      // one of PGlite's connection slots forever. End it here as Postgres would.
      if (bytes.length >= 5 && bytes.subarray(-5).equals(TERMINATE)) tcp.end();
    };
    const gated = gate?.connect(forward);
    tcp.on('data', (data) => {
      gated?.fromServer(data);
      if (ws.readyState === ws.OPEN) ws.send(data);
    });
    tcp.on('close', () => {
      gated?.close();
      ws.close();
    });
    tcp.on('error', () => ws.close());
    ws.on('message', (data) => (gated ? gated.fromClient(data as Buffer) : forward(data as Buffer)));
    ws.on('close', () => tcp.destroy());
    ws.on('error', () => tcp.destroy());
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const { port } = wss.address() as AddressInfo;
  return { address: `127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => wss.close(() => resolve())) };
}
