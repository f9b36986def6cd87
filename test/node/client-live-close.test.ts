// A server's close frame is final for the typed client, even when the server keeps the TCP
// connection open afterwards (as Workers do until the idle Durable Object is evicted, ~10 s).
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { OrbitalClient, subscribe } from '../../src/client';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
let server: http.Server;
let base: string;
const sockets: Socket[] = [];
let clientAnswered!: () => void;
const answered = new Promise<void>((resolve) => (clientAnswered = resolve));

beforeAll(async () => {
  server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ticket: 'ticket', expires_at: new Date(Date.now() + 30_000).toISOString() }));
  });
  // The upgrade by hand: a close frame 4403 right away, and the connection never ended from here.
  server.on('upgrade', (req, socket: Socket) => {
    sockets.push(socket);
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}${GUID}`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    const reason = Buffer.from('removed from the orbit');
    socket.write(Buffer.concat([Buffer.from([0x88, 2 + reason.length, 4403 >> 8, 4403 & 0xff]), reason]));
    // The client's reply: a masked close frame (opcode 8).
    socket.on('data', (data) => (data[0]! & 0x0f) === 8 && clientAnswered());
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  vi.useRealTimers();
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

it('ends the subscription on the close frame, without waiting for the server to drop the connection', async () => {
  const client = new OrbitalClient({ server: base, tokens: { access_token: 'a.b.c', refresh_token: 'r' } });
  const sub = subscribe(client, 'group', { onEvent: () => undefined });
  await answered;
  // From here on, only the client's own close timer can end it: the server never will.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  let result: { code: number; reason: string } | undefined;
  void sub.closed.then((r) => (result = r));
  await vi.advanceTimersByTimeAsync(1000);
  vi.useRealTimers();
  await vi.waitFor(() => expect(result).toEqual({ code: 4403, reason: 'removed from the orbit' }));
  await vi.waitFor(() => expect(sockets[0]!.destroyed || sockets[0]!.readableEnded).toBe(true));
});
