// A WebSocket-to-TCP proxy, as Neon's own proxy does it: lets the Neon serverless driver inside
// workerd reach a plain Postgres (or PGlite over the wire protocol) on this machine.
import { createRequire } from 'node:module';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Conversation, Turns } from './pg-turns';

// A globalSetup of a Workers project resolves `ws` to its browser build; load the Node one.
const { WebSocketServer } = createRequire(import.meta.url)('ws') as typeof import('ws');

const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

/** `oneAtATime`: for PGlite, whose connections share one backend (see pg-turns.ts). */
export async function startWsTcpProxy(allowed: (host: string, port: number) => boolean, options: { oneAtATime?: boolean } = {}) {
  const turns = options.oneAtATime ? new Turns() : null;
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('connection', (ws, req) => {
    const address = new URL(req.url ?? '/', 'http://proxy').searchParams.get('address') ?? '';
    const [host, portText] = address.split(':');
    const port = Number(portText);
    if (!host || !port || !allowed(host, port)) return ws.close(1008, 'address not allowed');
    const tcp = net.connect({ host, port });
    const toServer = (bytes: Buffer) => {
      tcp.write(bytes);
      // Postgres closes the connection on Terminate; PGlite's socket server does not, and the
      // driver then leaves the socket open, so connections would pile up until it refuses more.
      if (bytes.length >= 5 && bytes.subarray(-5).equals(TERMINATE)) {
        tcp.end();
        conversation?.end();
      }
    };
    const conversation = turns ? new Conversation(turns, toServer) : null;
    tcp.on('data', (data) => {
      if (ws.readyState === ws.OPEN) ws.send(data);
      conversation?.received(data);
    });
    const closed = () => {
      conversation?.end();
      ws.close();
    };
    tcp.on('close', closed);
    tcp.on('error', closed);
    ws.on('message', (data) => (conversation ? conversation.send(data as Buffer) : toServer(data as Buffer)));
    ws.on('close', () => {
      conversation?.end();
      tcp.destroy();
    });
    ws.on('error', () => tcp.destroy());
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const { port } = wss.address() as AddressInfo;
  return { address: `127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => wss.close(() => resolve())) };
}
