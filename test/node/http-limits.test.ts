// The Node server's connection rules: a client that stalls mid-request (slow loris) loses its
// connection instead of holding it forever, and an answer sent before the request body arrived
// closes the connection (which could not carry another request) instead of leaving the client to
// find it dropped under its next request.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTarget } from '../support/node-target';
import { expectStatus, registerUser, type TestUser } from '../support/api';
import type { Target } from '../support/types';

let t: Target & { url: string };
let user: TestUser;
beforeAll(async () => {
  // Short deadlines for this server only; the defaults (10 min, 60 s) suit slow uploads.
  t = await createTarget({ timeouts: { requestMs: 1500, headersMs: 1000, checkEveryMs: 250 } });
  user = await registerUser(t);
});
afterAll(() => t?.close());

/** Sends `head` on a raw connection, then nothing more; resolves with what came back once the server closes it. */
function stall(head: string): Promise<{ received: string; socket: Socket }> {
  const { port, hostname } = new URL(t.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(head));
    let received = '';
    socket.on('data', (d) => (received += d.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve({ received, socket }));
  });
}

describe('stalled clients', () => {
  it('a body that stops arriving loses its connection, and the server goes on serving', async () => {
    const body = '{"username":"someone","password":"';
    const head = `POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n${body}`;
    const { received } = await stall(head);
    expect(received).toMatch(/^HTTP\/1\.1 408/);
    await expectStatus(await t.fetch('/health'), 200);
  });

  it('headers that never end lose their connection with 408', async () => {
    const { received } = await stall('GET /api/users/me HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    expect(received).toMatch(/^HTTP\/1\.1 408/);
    await expectStatus(await t.fetch('/health'), 200);
  });
});

describe("requests Node's parser refuses", () => {
  const json = (received: string) => JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4));

  it('get their status in the contract\'s shape, with a request id: a line that is no HTTP, headers too large, a stall', async () => {
    const garbage = (await stall('HELLO THERE\r\n\r\n')).received;
    const huge = (await stall(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)).received;
    const slow = (await stall('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ')).received;
    for (const [received, status, code] of [[garbage, 400, 'VALIDATION_ERROR'], [huge, 431, 'VALIDATION_ERROR'], [slow, 408, 'VALIDATION_ERROR']] as const) {
      expect(received).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(received).toMatch(/\r\nx-request-id: [0-9a-f-]{36}\r\n/i);
      expect(json(received).error).toMatchObject({ code, request_id: expect.any(String) });
    }
  });

  it('a refusal reaches the client on a connection that served earlier requests, while its headers still arrive', async () => {
    const { port, hostname } = new URL(t.url);
    for (let round = 0; round < 5; round++) {
      const received = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), hostname, () => socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n'));
        let text = '';
        socket.on('error', (err) => reject(new Error(`${err.message} after ${JSON.stringify(text)}`)));
        socket.on('close', () => resolve(text));
        socket.on('data', async (d) => {
          const first = !text;
          text += d.toString();
          if (!first) return;
          // Kept alive after its 200, the connection carries 64 KiB of headers in 2 KiB writes:
          // the parser refuses them at 16 KiB, and the rest keeps coming.
          socket.write('GET /health HTTP/1.1\r\nHost: x\r\n');
          for (let i = 0; i < 32 && !socket.destroyed; i++) {
            socket.write(`X-Big-${i}: ${'a'.repeat(2_000)}\r\n`);
            if (i % 8 === 7) await new Promise((r) => setImmediate(r));
          }
          if (!socket.destroyed) socket.end('\r\n');
        });
      });
      expect(received.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 431']);
      expect(json(received.slice(received.lastIndexOf('HTTP/1.1 '))).error).toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    await expectStatus(await t.fetch('/health'), 200);
  });

  it('bytes pipelined behind a request that closes the connection go unanswered, and that request still gets its answer', async () => {
    const { received } = await stall('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(received.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200']);
  });
});

describe('answers sent before the body arrived', () => {
  it('close the connection, and the next request goes through', async () => {
    const big = JSON.stringify({ key_epoch: 2, keys: [{ user_id: user.id, encrypted_group_key: 'A'.repeat(2_000_000) }] });
    for (let i = 0; i < 3; i++) {
      // Refused by its path parameter, so the 2 MB body is never read.
      const refused = await t.fetch('/api/groups/not-a-uuid/keys', { method: 'POST', headers: { ...user.auth, 'content-type': 'application/json' }, body: big });
      expect(refused.status).toBe(400);
      expect(refused.headers.get('connection')).toBe('close');
      await refused.arrayBuffer();
      await expectStatus(await t.fetch('/api/users/me', { headers: user.auth }), 200);
    }
  });

  it('keep the connection when the body was read', async () => {
    const res = await t.fetch('/api/groups/join', { method: 'POST', headers: { ...user.auth, 'content-type': 'application/json' }, body: '{"invite_code":"nope1234"}' });
    expect(res.status).toBe(404);
    expect(res.headers.get('connection')).toBe('keep-alive');
  });
});
