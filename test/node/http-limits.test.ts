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
const logged: Record<string, unknown>[] = [];
beforeAll(async () => {
  // Short deadlines for this server only; the defaults (10 min, 60 s) suit slow uploads.
  t = await createTarget({ timeouts: { requestMs: 1500, headersMs: 1000, checkEveryMs: 250 }, logger: { log: (level, fields) => void logged.push({ level, ...fields }) } });
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

  it('pipelined behind a request still being answered, a refusal comes after its answer, not ahead of it', async () => {
    // Login hashes a password: its answer is still being made when the garbage behind it is parsed.
    const body = JSON.stringify({ username: user.username, password: 'not the password at all' });
    const login = `POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    for (const behind of ['GARBAGE GARBAGE\r\n\r\n', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]) {
      const { received } = await stall(login + behind);
      expect(received.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 401', behind.startsWith('GARBAGE') ? 'HTTP/1.1 400' : 'HTTP/1.1 431']);
    }
  });

  it('a request answered 408 is not carried out when the rest of it arrives after the answer', async () => {
    const username = `late_${Date.now().toString(36)}`;
    const body = JSON.stringify({ username, password: 'a long enough password for this', public_key: user.publicKey });
    const full = `POST /api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const { port, hostname } = new URL(t.url);
    const received = await new Promise<string>((resolve) => {
      const socket = connect(Number(port), hostname, () => socket.write(full.slice(0, full.length - 10)));
      let text = '';
      socket.on('data', (d) => {
        text += d.toString();
        // The client finishes its body the moment the 408 arrives.
        if (/^HTTP\/1\.1 408/.test(text)) socket.write(full.slice(full.length - 10));
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve(text));
    });
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    await new Promise((r) => setTimeout(r, 500));
    const login = await t.fetch('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'a long enough password for this' }) });
    expect(login.status).toBe(401);
  });

  it('a body the parser refuses mid-way is a client error, not logged as the database failing', async () => {
    logged.length = 0;
    const { received } = await stall('POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\nZZ\r\n');
    expect(received).toMatch(/^HTTP\/1\.1 400 /);
    // The handler waiting on that body ends once the connection closes.
    const deadline = Date.now() + 10_000;
    while (!logged.some((l) => l.msg === 'request' && l.route === '/api/auth/login') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(logged.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
    expect(logged.find((l) => l.msg === 'request' && l.route === '/api/auth/login')).toMatchObject({ status: 400 });
  });

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
