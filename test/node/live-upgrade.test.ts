// The Node server's own upgrade path: only a real handshake (Connection: upgrade) reaches the hub.
// A GET that merely carries `Upgrade: websocket` arrives as a plain request, is refused, and takes
// no place under the per-user socket cap.
import { request, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrbit, post, registerUser } from '../support/api';
import { livePath, openLive } from '../support/live';
import { CHUNK, uploadFile } from '../support/media';
import { createTarget } from '../support/node-target';

let t: Awaited<ReturnType<typeof createTarget>>;
beforeAll(async () => {
  t = await createTarget();
});
afterAll(() => t?.close());

/**
 * A request carrying upgrade headers as written (headers left undefined are not sent), answered
 * without a 101. `json`: a JSON error body (for HEAD, which has none, its content type says so).
 */
function handshake(method: string, path: string, headers: Record<string, string | undefined>): Promise<{ status: number; text: string; json: boolean; body: any }> {
  const sent = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<string, string>;
  return new Promise((resolve, reject) => {
    const req = request(t.url + path, { method, headers: sent }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        let body: any = null;
        try {
          body = JSON.parse(text);
        } catch {}
        const jsonType = res.headers['content-type']?.startsWith('application/json') ?? false;
        resolve({ status: res.statusCode!, text, body, json: jsonType && (method === 'HEAD' || body !== null) });
      });
    });
    req.on('upgrade', () => reject(new Error('upgraded')));
    req.on('error', reject);
    req.end();
  });
}

/** A GET that carries `Upgrade: websocket` but is no handshake (no Connection: upgrade). */
const plainGet = (path: string, headers: Record<string, string>) => handshake('GET', path, { ...headers, upgrade: 'websocket', connection: 'keep-alive' });

describe('an Upgrade header without a handshake', () => {
  it('is refused 400 and leaves all five sockets of the cap to open', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    for (let i = 0; i < 5; i++) {
      const res = await plainGet(livePath(orbit.id), owner.auth);
      expect([res.status, res.body.error.code]).toEqual([400, 'VALIDATION_ERROR']);
    }
    // An outsider, and an orbit that does not exist, get 404 as on a plain GET.
    const outsider = await registerUser(t);
    for (const path of [livePath(orbit.id), livePath(crypto.randomUUID())]) {
      const res = await plainGet(path, outsider.auth);
      expect([res.status, res.body.error.code]).toEqual([404, 'NOT_FOUND']);
    }
    const sockets = await Promise.all(Array.from({ length: 5 }, () => t.socket(livePath(orbit.id), owner.auth)));
    expect(sockets).toHaveLength(5);
    for (const s of sockets) s.close();
  });

  it('does not use up a ticket, nor does a handshake the socket library would refuse: the ticket still opens a socket afterwards', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const { ticket } = await (await t.fetch(`/api/groups/${orbit.id}/live/ticket`, post({}, owner.auth))).json();
    const path = livePath(orbit.id, { ticket });
    const res = await plainGet(path, {});
    expect([res.status, res.body.error.code]).toEqual([400, 'VALIDATION_ERROR']);
    const valid = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' };
    for (const [method, headers] of [
      ['GET', { ...valid, 'sec-websocket-key': 'not a key' }],
      ['GET', { ...valid, 'sec-websocket-key': undefined }],
      ['GET', { ...valid, 'sec-websocket-version': '99' }],
      ['GET', { ...valid, upgrade: 'h2c' }],
      ['GET', { ...valid, 'sec-websocket-protocol': 'a,,b' }],
      ['HEAD', valid],
    ] as const) {
      const refused = await handshake(method, path, headers);
      expect([method, headers, refused.status, refused.json ? 'json' : refused.text], `${method} ${JSON.stringify(headers)}`).toEqual([method, headers, 400, 'json']);
    }
    const { socket } = await openLive(t, path);
    socket.close();
  });
});

const wsHandshake = (host: string) =>
  `GET /live HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

/** Sends `text` on a raw connection and reads until the server closes it (5 s at most). */
function conversation(text: string): Promise<string> {
  const { port, hostname } = new URL(t.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ port: Number(port), host: hostname }, () => socket.write(text));
    let answer = '';
    const done = () => (clearTimeout(deadline), socket.destroy(), resolve(answer));
    const deadline = setTimeout(done, 5000);
    socket.on('data', (d) => (answer += d));
    socket.on('close', done);
    socket.on('error', reject);
  });
}

/** Sends `head` (and `body`) on a raw connection; resolves with the first bytes of the answer, then stops reading. */
function firstBytes(head: string, body?: Buffer): Promise<{ text: string; socket: Socket }> {
  const { port, hostname } = new URL(t.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ port: Number(port), host: hostname }, () => socket.write(body ? Buffer.concat([Buffer.from(head), body]) : head));
    socket.once('data', (d) => {
      socket.pause();
      resolve({ text: d.toString('latin1'), socket });
    });
    socket.on('error', reject);
  });
}

describe('an Upgrade header on a request that is no WebSocket handshake', () => {
  it('is served as the plain request it is: a body sent with Upgrade: h2c (curl --http2 over http) reaches the app, with a length or chunked', async () => {
    const user = await registerUser(t);
    const body = Buffer.from(JSON.stringify({ username: user.username, password: user.password }));
    const h2c = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Type: application/json\r\n';
    const sized = await firstBytes(`POST /api/auth/login HTTP/1.1\r\nHost: x\r\n${h2c}Content-Length: ${body.length}\r\n\r\n`, body);
    const chunked = await firstBytes(`POST /api/auth/login HTTP/1.1\r\nHost: x\r\n${h2c}Transfer-Encoding: chunked\r\n\r\n`, Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]));
    for (const { text, socket } of [sized, chunked]) {
      socket.destroy();
      expect(text).toMatch(/^HTTP\/1\.1 200 /);
      expect(text).toContain('"access_token"');
    }
  });

  it('is answered in turn when pipelined between plain requests on one connection', async () => {
    const ask = (i: number, upgrade: boolean) => `GET /health?n=${i} HTTP/1.1\r\nHost: x\r\n${upgrade ? 'Connection: Upgrade\r\nUpgrade: x\r\n' : ''}\r\n`;
    const asks = Array.from({ length: 30 }, (_, i) => ask(i, i % 3 !== 0)).join('');
    const { port, hostname } = new URL(t.url);
    const answers = await new Promise<number>((resolve, reject) => {
      const socket = connect({ port: Number(port), host: hostname }, () => socket.write(`${asks}GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
      let text = '';
      socket.on('data', (d) => (text += d));
      socket.on('end', () => resolve(text.match(/HTTP\/1\.1 200 /g)?.length ?? 0));
      socket.on('error', reject);
    });
    expect(answers).toBe(31);
  });

  it('after a request Node answers at once (OPTIONS *), the one pipelined behind it is answered too; refusals of a request line or Host no URL can be made of (plain or a WebSocket handshake) are JSON with a request id', async () => {
    const h2c = 'Connection: Upgrade\r\nUpgrade: h2c\r\n';
    const text = await conversation(`OPTIONS * HTTP/1.1\r\nHost: x\r\n${h2c}\r\nGET /health HTTP/1.1\r\nHost: x\r\n${h2c}\r\nGET /health HTTP/1.1\r\nHost: a b\r\n\r\n${wsHandshake('a b')}`);
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    expect(statuses).toEqual(['400', '200', '400', '400']);
    const refusals = text.split(/HTTP\/1\.1 400 /).slice(1);
    for (const refusal of refusals) {
      expect(refusal).toMatch(/x-request-id: [0-9a-f-]{36}\r\n/i);
      expect(refusal).toContain('"code":"VALIDATION_ERROR"');
    }
  });

  it('streams a large answer, as to a handshake the app did not take: 4 unread 20 MiB downloads each way hold no copy of the file in the server', async () => {
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    const { mediaId, file } = await uploadFile(t, owner, orbit.id, 4 * CHUNK);
    const path = `/api/media/${mediaId}/download`;
    const auth = `Authorization: ${owner.auth.authorization}\r\n`;
    const asks = [
      `GET ${path} HTTP/1.1\r\nHost: x\r\n${auth}Connection: Upgrade\r\nUpgrade: x\r\n\r\n`,
      `GET ${path} HTTP/1.1\r\nHost: x\r\n${auth}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ];
    for (const ask of asks) {
      const before = process.memoryUsage().arrayBuffers;
      // The server holds a response as long as its client does not read it (this test's sockets).
      const unread = await Promise.all(Array.from({ length: 4 }, () => firstBytes(ask)));
      const grown = process.memoryUsage().arrayBuffers - before;
      for (const { text, socket } of unread) {
        expect(text).toMatch(/^HTTP\/1\.1 200 /);
        socket.destroy();
      }
      expect(grown, ask.split('\r\n')[3]).toBeLessThan(file.length);
    }
    // Read to the end, the answer is the whole file.
    const whole = await new Promise<Buffer>((resolve, reject) => {
      const { port, hostname } = new URL(t.url);
      const socket = connect({ port: Number(port), host: hostname }, () => socket.write(asks[1]!));
      const parts: Buffer[] = [];
      socket.on('data', (d) => parts.push(d));
      socket.on('end', () => resolve(Buffer.concat(parts)));
      socket.on('error', reject);
    });
    const at = whole.indexOf('\r\n\r\n') + 4;
    expect(whole.subarray(0, at).toString()).toMatch(/^HTTP\/1\.1 200 [^]*Connection: close/);
    expect(Buffer.compare(whole.subarray(at), Buffer.from(file))).toBe(0);
  });
});

describe('an open socket', () => {
  it('keeps nothing of its handshake request (headers, read buffer) once it is open', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const owner = await registerUser(t);
    const orbit = await createOrbit(t, owner);
    let handshakeRequest: WeakRef<IncomingMessage> | undefined;
    const watch = (req: IncomingMessage) => void (handshakeRequest = new WeakRef(req));
    t.httpServer.prependListener('upgrade', watch);
    try {
      const { socket } = await openLive(t, livePath(orbit.id), owner.auth);
      // Held only as long as something the open socket keeps refers to it (10,000 idle sockets
      // held 2.5 KiB each of requests and read buffers that way).
      for (let i = 0; i < 10 && handshakeRequest!.deref(); i++) {
        await new Promise((r) => setTimeout(r, 20));
        gc();
      }
      expect(handshakeRequest!.deref()).toBeUndefined();
      socket.close();
    } finally {
      t.httpServer.off('upgrade', watch);
    }
  });
});

describe('a handshake pipelined behind answers still being written', () => {
  it('leaves the server up when the client resets the connection meanwhile', async () => {
    const thrown: unknown[] = [];
    const record = (err: unknown) => void thrown.push(err);
    process.on('uncaughtException', record);
    try {
      const { hostname, port } = new URL(t.url);
      const answer = `GET /openapi.json HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`;
      const handshake = `GET /anything HTTP/1.1\r\nHost: ${hostname}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
      for (let i = 0; i < 3; i++) {
        const socket = connect(Number(port), hostname);
        socket.on('error', () => {});
        // Never read: the large answers fill the buffers, so the first is still being written
        // when the handshake behind it arrives and the reset comes.
        socket.pause();
        socket.write(answer.repeat(20) + handshake);
        await new Promise((r) => setTimeout(r, 300));
        socket.resetAndDestroy();
      }
      await new Promise((r) => setTimeout(r, 300));
      expect(thrown).toEqual([]);
      expect((await fetch(t.url + '/health')).status).toBe(200);
    } finally {
      process.off('uncaughtException', record);
    }
  });
});
