// A WebSocket-to-TCP proxy, as Neon's own proxy does it: lets the Neon serverless driver inside
// workerd reach a plain Postgres (or PGlite over the wire protocol) on this machine.
import { createRequire } from 'node:module';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

// A globalSetup of a Workers project resolves `ws` to its browser build; load the Node one.
const { WebSocketServer } = createRequire(import.meta.url)('ws') as typeof import('ws');

export async function startWsTcpProxy(allowed: (host: string, port: number) => boolean) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('connection', (ws, req) => {
    const address = new URL(req.url ?? '/', 'http://proxy').searchParams.get('address') ?? '';
    const [host, portText] = address.split(':');
    const port = Number(portText);
    if (!host || !port || !allowed(host, port)) return ws.close(1008, 'address not allowed');
    const tcp = net.connect({ host, port });
    tcp.on('data', (data) => ws.readyState === ws.OPEN && ws.send(data));
    tcp.on('close', () => ws.close());
    tcp.on('error', () => ws.close());
    ws.on('message', (data) => {
      const bytes = data as Buffer;
      tcp.write(bytes);
      // A Postgres Terminate message ('X', length 4): Postgres closes the connection after it,
      // PGlite's socket server does not, and workerd never completes the WebSocket close, so
      // without this every pooled connection stays open until the test file ends.
      if (bytes.length === 5 && bytes[0] === 0x58 && bytes.readInt32BE(1) === 4) tcp.end();
    });
    ws.on('close', () => tcp.destroy());
    ws.on('error', () => tcp.destroy());
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const { port } = wss.address() as AddressInfo;
  return { address: `127.0.0.1:${port}`, close: () => new Promise<void>((resolve) => wss.close(() => resolve())) };
}
